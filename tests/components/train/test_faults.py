"""Faults a real run meets: SIGKILL mid-epoch (of a run, or of one worker of a 2-worker run), bad examples."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.common.config import TrainConfig
from components.common.errors import ExamplesError
from components.common.model_loading import load_model
from components.train import run
from tests.conftest import ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
QUIET = ["train.tensorboard.profile_batch=[]", "train.tensorboard.histogram_freq=0"]


def start(examples: str, out: Path, sets: list[str], workers: int = 1) -> subprocess.Popen:
    command = [sys.executable, "-m", "components", "train", "--examples", examples, "--out", str(out),
               "--workers", str(workers), *(f"--set={s}" for s in [*QUIET, *sets])]
    log = open(f"{out}.log", "a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV)


def backup_epoch(out: Path) -> int:
    try:
        return json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being written
        return 0


def wait_for_epoch(out: Path, epoch: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while backup_epoch(out) < epoch:
        assert proc.poll() is None, f"the run ended before epoch {epoch}:\n{Path(f'{out}.log').read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no backup in time"
        time.sleep(0.05)


def finish(proc: subprocess.Popen, out: Path) -> str:
    proc.wait(timeout=300)
    log = Path(f"{out}.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    return log


def assert_resumed(out: Path, examples: str, epochs: int, resumed_at: int, log: str) -> None:
    assert f"resuming after epoch {resumed_at} " in log
    training = json.loads((out / "training.json").read_text())
    assert training["epochs_run"] == epochs - resumed_at, "completed epochs were repeated"
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == epochs
    assert not (out / "backup").exists(), "the backup outlives a finished run"
    from components.common import reader
    from components.common.schema import Schema
    from components.common.task import task_of
    from components.train import step

    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(str(out))
    step.compile_model(model, TrainConfig(), task)
    data = reader.dataset(examples, "eval", schema, task, 64, training=False)  # the functional model's dict input
    metrics = model.evaluate(data, verbose=0, return_dict=True)
    assert metrics["accuracy"] == pytest.approx(json.loads((out / "metrics.json").read_text())["accuracy"])


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path, digits_examples):
    out, epochs = tmp_path / "out", 10
    sets = [f"train.epochs={epochs}", "train.batch_size=8", "train.model.api=functional"]
    proc = start(digits_examples, out, sets)
    wait_for_epoch(out, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed_at = backup_epoch(out)
    assert not (out / "model.keras").exists()
    log = finish(start(digits_examples, out, sets), out)
    assert_resumed(out, digits_examples, epochs, resumed_at, log)


@pytest.mark.slow
def test_a_worker_killed_stops_the_run_and_its_chief(tmp_path, digits_examples):
    """A real MultiWorkerMirroredStrategy run over 127.0.0.1: SIGKILL (the OOM killer's, an operator's) is not a
    crash to restart; the launcher stops the chief, which would otherwise wait on its dead peer forever, and exits
    with the worker's status. Resuming a 2-worker run from its backup: test_worker_restart.py."""
    out = tmp_path / "out"
    sets = ["train.epochs=3", "train.batch_size=32", "train.model.api=functional"]
    launcher = start(digits_examples, out, sets, workers=2)
    wait_for_epoch(out, 1, launcher)
    pids = re.search(r"started 2 workers: pids (\d+), (\d+)", Path(f"{out}.log").read_text())
    chief, worker = int(pids[1]), int(pids[2])
    os.kill(worker, signal.SIGKILL)
    assert launcher.wait(timeout=60) == 128 + signal.SIGKILL
    log = Path(f"{out}.log").read_text()
    assert "worker 1 was killed by signal 9; stopping the others" in log
    assert "restarting" not in log
    with pytest.raises(ProcessLookupError):
        os.kill(chief, 0)  # the chief was stopped and reaped, not left waiting on a dead peer
    assert backup_epoch(out) >= 1, "the backup a rerun resumes from is gone"
    assert not (out / "model.keras").exists()


def edited(examples: str, tmp_path: Path, edit) -> str:
    copy = tmp_path / "examples"
    shutil.copytree(examples, copy)
    schema = json.loads((copy / "schema.json").read_text())
    edit({f["name"]: f for f in schema["features"]})
    (copy / "schema.json").write_text(json.dumps(schema))
    return str(copy)


def test_image_shape_other_than_the_schema(tmp_path, digits_examples):
    examples = edited(digits_examples, tmp_path, lambda f: f["image"]["image"].update(height=10))
    with pytest.raises(ExamplesError, match=r"record 1: image 'image' is 8x8x1 .*the schema expects 10x8x1"):
        run(TrainConfig(), examples, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.keras").exists()


def test_feature_kind_other_than_the_schema(tmp_path, penguins_examples):
    examples = edited(penguins_examples, tmp_path, lambda f: f["bill_length_mm"].update(type="int"))
    with pytest.raises(ExamplesError,
                       match="'bill_length_mm' holds 1 value.s. of float_list; the schema expects one int"):
        run(TrainConfig(), examples, str(tmp_path / "out"))


def test_label_outside_the_schema_classes(tmp_path, penguins_examples):
    def rename(features):
        top = features["species"]["stats"]["top"]
        top[0] = ["Emperor", top[0][1]]

    examples = edited(penguins_examples, tmp_path, rename)
    with pytest.raises(ExamplesError, match="label 'species' is '.*', not one of the schema's classes .*Emperor"):
        run(TrainConfig(), examples, str(tmp_path / "out"))
