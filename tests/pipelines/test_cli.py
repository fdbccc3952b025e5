"""The `tfpipe` and `python -m components` commands, run as a user runs them."""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from components.common.registry import Registry
from tests.conftest import ROOT
from tests.pages import assert_whatif_report_shows

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
                "--out", str(tmp_path / "itself"), "--compare", str(model))
    assert done.returncode == 0, done.stderr
    assert "What-If report on" in done.stdout
    assert_whatif_report_shows(tmp_path / "itself")
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
