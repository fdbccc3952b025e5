"""The `tfpipe` and `python -m components` commands, run as a user runs them."""

import csv
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from components.common.registry import Registry
from pipelines.targets.local_log import ANSI
from tests.conftest import ROOT
from tests.pages import assert_evaluation_report_shows, assert_whatif_report_shows

TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def call(*args, cwd=ROOT):
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def test_ingest_command(tmp_path, people_csv):
    done = call(TFPIPE, "ingest", "--set", f"ingest.source={people_csv}", "--set", "ingest.key=id",
                "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "500 rows (train" in done.stdout
    assert "0 rejected" in done.stdout
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["ingest"]["key"] == "id"


def test_module_entry_point_and_errors(tmp_path, people_csv):
    done = call(sys.executable, "-m", "components", "ingest", "--set", f"ingest.source={people_csv}",
                "--set", "ingest.label=target", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "error: " in done.stderr
    assert "label column 'target' not found" in done.stderr
    assert "Traceback" not in done.stderr
    done = call(TFPIPE, "ingest", "--set", "ingest.shards=many", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "ingest.shards: expected an integer, got 'many'" in done.stderr
    done = call(TFPIPE, "ingest", "--set", f"ingest.source={tmp_path}/nothing.csv", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "nothing.csv does not exist" in done.stderr


@pytest.mark.slow
def test_example_data_then_run(tmp_path):
    done = call(TFPIPE, "example-data", "--out", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "data" / "digits").glob("*/*.png"))) == 1797
    with open(tmp_path / "data" / "penguins" / "penguins.csv", newline="") as f:
        penguins = list(csv.DictReader(f))
    assert len(penguins) == 344
    assert {p["species"] for p in penguins} == {"Adelie", "Chinstrap", "Gentoo"}
    done = call(TFPIPE, "run", "--config", str(ROOT / "pipelines/configs/penguins.yaml"),
                "--set", f"ingest.source={tmp_path}/data/penguins/penguins.csv", "--set", f"runs_root={tmp_path}/runs",
                "--set", "runtime.workers=2", "--set", "train.epochs=5",
                "--set", "evaluate.thresholds={accuracy: {at_least: 0}}")  # always blessed: export and serve run
    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "runs").glob("tfpipe-penguins-*")
    assert "[worker 1]" in (run_dir / "pipeline.log").read_text()
    assert "[worker 1]" not in done.stdout
    assert "Task 'train' finished with status SUCCESS" in ANSI.sub("", done.stdout)
    examples, model = run_dir / "ingest" / "examples", run_dir / "train" / "model"
    assert json.loads((run_dir / "config.json").read_text())["ingest"]["label"] == "species"
    schema = json.loads((examples / "schema.json").read_text())
    assert schema["splits"]["train"] + schema["splits"]["eval"] + schema["splits"]["test"] == 344
    assert str(examples / "stats.html") in done.stdout
    assert json.loads((model / "training.json").read_text())["workers"] == 2
    assert "blessed   yes" in done.stdout
    shown = assert_evaluation_report_shows(run_dir / "evaluate" / "evaluation", "BLESSED")
    assert {r["feature"] for r in shown["Slices"]} == {"island", "sex", "body_mass_g"}  # the config's slices
    assert (tmp_path / "runs" / "serving" / "penguins" / "1" / "saved_model.pb").exists()
    registered = Registry(str(tmp_path / "runs" / "serving" / "penguins")).get(1)
    assert registered.blessed
    kept = tmp_path / "runs" / "serving" / "penguins" / "1" / "assets.extra" / "keras" / "model.keras"
    assert registered.evaluation.model == str(kept.resolve())  # kept with the version, not in the run folder
    assert kept.read_bytes() == (model / "model.keras").read_bytes()
    assert json.loads((run_dir / "serve" / "deployment" / "infra_blessing.json").read_text())["blessed"]
    step_commands_on(examples, model, tmp_path)
    assert f"tfpipe tensorboard {run_dir}" in done.stdout
    assert_tensorboard_serves(run_dir, {"train/train", "train/validation", "evaluate/evaluation"})
    assert_tensorboard_serves(model / "logs", {"train", "validation"})


def step_commands_on(examples, model, tmp_path):
    """`tfpipe evaluate` and `tfpipe export` on a finished run's folders."""
    done = call(TFPIPE, "evaluate", "--model", str(model), "--examples", str(examples),
                "--out", str(tmp_path / "eval"), "--home", str(tmp_path / "home"),
                "--set", "evaluate.thresholds.accuracy.at_least=1.01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NOT blessed: loss ")
    done = call(TFPIPE, "export", "--model", str(model), "--examples", str(examples),
                "--home", str(tmp_path / "home"), "--evaluation", str(tmp_path / "eval"))
    assert done.returncode == 0, done.stderr
    assert "version 1 (serving_default, predict_examples, classification)" in done.stdout
    assert Registry(str(tmp_path / "home")).get(1).evaluation.verdict == "not blessed"
    done = call(TFPIPE, "whatif", "report", "--model", str(model), "--examples", str(examples),
                "--out", str(tmp_path / "whatif"))
    assert done.returncode == 0, done.stderr
    assert "What-If report on" in done.stdout
    assert_whatif_report_shows(tmp_path / "whatif")
    done = call(TFPIPE, "whatif", "report", "--model", str(model), "--examples", str(examples),
                "--out", str(tmp_path / "itself"), "--compare", str(model))
    assert done.returncode == 0, done.stderr
    assert "<b>No difference beyond noise</b>" in (tmp_path / "itself" / "report.html").read_text()
    done = call(TFPIPE, "whatif", "report", "--model", str(model), "--examples", str(examples),
                "--out", str(tmp_path / "none"), "--compare", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"{tmp_path / 'nowhere'}/model.keras: no model to compare with here; "
                                        "expected the train step's model.keras")
    assert not (tmp_path / "none").exists()


def assert_tensorboard_serves(path, runs: set[str]):
    board = subprocess.Popen([TFPIPE, "tensorboard", str(path), "--port", "0"], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        line = board.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        with urllib.request.urlopen(url[1] + "data/runs", timeout=30) as response:
            assert runs <= set(json.loads(response.read()))
        with urllib.request.urlopen(url[1] + "data/plugins_listing", timeout=30) as response:
            assert {"scalars", "images", "graphs", "histograms", "profile"} <= set(json.loads(response.read()))
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_help_lists_commands():
    done = call(TFPIPE, "--help")
    assert done.returncode == 0, done.stderr
    positional = done.stdout.split("positional arguments:\n", 1)[1].split("\noptions:\n", 1)[0]
    listed = re.findall(r"^    ([\w-]+)(?:  |$)", positional, re.MULTILINE)  # each command on a line of its own
    assert listed == ["run", "compile", "ingest", "train", "tune", "evaluate", "export", "validate", "predict",
                      "models", "whatif", "serve", "monitor", "example-data", "submit", "schedule", "tensorboard"]


def test_monitor_and_models_refuse_what_they_cannot_do_in_one_line(tmp_path):
    (tmp_path / "logs").mkdir()
    done = call(TFPIPE, "monitor", "--log", str(tmp_path / "logs"), "--examples", str(tmp_path), "--out",
                str(tmp_path / "out"), "--window", "99999999999999999999d")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: window: expected 1 to 3,153,600,000 seconds (100 years), got 8,639,999,999,999,999,999,913,600"]
    done = call(TFPIPE, "models", "list", "--base", str(tmp_path / "serving" / "typo"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {tmp_path}/serving/typo: no such folder; expected a model's folder of numbered " \
                          "versions, <base>/<name>\n"
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "serving").exists()
