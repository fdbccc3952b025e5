"""Hyperparameter search: the space, trials that fail or stop early, and TensorBoard's HParams dashboard."""

import json
import logging
import subprocess
import sys
import urllib.request
from pathlib import Path

import keras
import pytest
from tensorboard import program

from components.common.config import ConfigError, Domain, ModelConfig, TensorBoardConfig, TrainConfig, TuneConfig
from components.tune import run, space
from components.tune.step import MedianStopping

TRAIN = TrainConfig(epochs=3, batch_size=32, model=ModelConfig(api="functional"),
                    tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False))


def test_grid_and_random_trials():
    cfg = TuneConfig(space={"learning_rate": Domain(min=0.001, max=0.1, log=True),
                            "model.filters": Domain(min=8, max=32, integer=True),
                            "optimizer": Domain(values=("adam", "sgd"))}, grid_points=3, trials=100)
    assert space.grid_values(cfg.space["learning_rate"], 3) == [0.001, 0.01, 0.1]
    assert space.grid_values(cfg.space["model.filters"], 3) == [8, 20, 32]
    grid = space.trials(cfg)
    assert len(grid) == 18
    assert grid[0] == {"learning_rate": 0.001, "model.filters": 8, "optimizer": "adam"}
    randomly = TuneConfig(space=cfg.space, algorithm="random", trials=5, seed=3)
    assert space.trials(randomly) == space.trials(randomly)  # seeded
    for trial in space.trials(randomly):
        assert 0.001 <= trial["learning_rate"] <= 0.1
        assert 8 <= trial["model.filters"] <= 32
    assert space.apply(TRAIN, {"learning_rate": 0.02, "model.dropout": 0.25}).model.dropout == 0.25
    with pytest.raises(ConfigError, match="train.model.nope: unknown key"):
        space.apply(TRAIN, {"model.nope": 1})
    with pytest.raises(ConfigError, match="tune.space.x: expected either values"):
        TuneConfig(space={"x": Domain()}).validate()


def test_median_stopping_rule():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopper = MedianStopping(TuneConfig(space={"x": Domain(values=(1,))}, median_stopping_min_epochs=2),
                             finished=[[0.9, 0.95, 0.96], [0.8, 0.9, 0.92], [0.5]])
    stopper.set_model(model)
    model.stop_training = False
    stopper.on_epoch_end(0, {"val_accuracy": 0.5})
    assert not model.stop_training  # too early to judge
    stopper.on_epoch_end(1, {"val_accuracy": 0.6})  # best 0.6 < median of 0.95 and 0.9
    assert model.stop_training
    assert stopper.stopped


def hparams_plugin(logdir: Path, route: str, body: dict) -> dict:
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0", "--load_fast", "false"])
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    url = board.launch()
    request = urllib.request.Request(f"{url}data/plugin/hparams/{route}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    return json.loads(urllib.request.urlopen(request, timeout=60).read())


def test_search_with_a_failing_trial_read_back_from_tensorboard(tmp_path, penguins_examples):
    cfg = TuneConfig(space={"learning_rate": Domain(min=0.001, max=0.03, log=True),
                            "model.dropout": Domain(values=(0.0, 1.5))}, grid_points=2)
    result = run(cfg, TRAIN, penguins_examples, str(tmp_path))
    statuses = {t.id: t.status for t in result.trials}
    assert statuses == {"trial-000": "completed", "trial-001": "failed", "trial-002": "completed",
                        "trial-003": "failed"}
    assert "dropout: expected a fraction in [0, 1), got 1.5" in result.trials[1].error
    trials = json.loads((tmp_path / "trials.json").read_text())
    best = json.loads((tmp_path / "best.json").read_text())
    completed = [t for t in trials if t["status"] == "completed"]
    assert best["value"] == max(t["metric"] for t in completed)
    assert best["params"]["model.dropout"] == 0.0
    assert "trial-001" in (tmp_path / "trials.html").read_text()

    experiment = hparams_plugin(tmp_path / "trials", "experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == {"learning_rate", "model.dropout"}
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == {"eval_accuracy", "epoch_accuracy", "epoch_loss"}
    groups = hparams_plugin(tmp_path / "trials", "session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                  "STATUS_RUNNING"], "startIndex": 0, "sliceSize": 100})
    by_name = {g["name"]: g for g in groups["sessionGroups"]}
    assert set(by_name) == {t["id"] for t in completed}
    for t in completed:
        values = {m["name"]["tag"]: m["value"] for m in by_name[t["id"]]["metricValues"]}
        assert values["eval_accuracy"] == pytest.approx(t["metric"])
        assert by_name[t["id"]]["hparams"] == t["params"]


@pytest.mark.slow
def test_parallel_trials_from_the_command_line(tmp_path, penguins_examples):
    done = subprocess.run([str(Path(sys.executable).with_name("tfpipe")), "tune", "--examples", penguins_examples,
                           "--out", str(tmp_path), "--set", "tune.space={learning_rate: {values: [0.003, 0.03]}}",
                           "--set", "tune.parallel=2", "--set", "train.epochs=1",
                           "--set", "train.tensorboard.profile_batch=[]"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 trials (0 failed); best trial-00" in done.stdout
    assert [t["status"] for t in json.loads((tmp_path / "trials.json").read_text())] == ["completed"] * 2


@pytest.mark.parametrize(("setting", "message"), [
    ("tune.metric=acuracy", "tune.metric: 'acuracy' is not among the eval metrics"),
    ("tune.space={train.learning_rate: {values: [0.01, 0.02]}}",
     "tune.space.train.learning_rate: 'train' is not a train setting"),
    ("tune.space={model.dropout: {values: [1.5]}}", "tune: none of 1 trials completed (1 failed"),
], ids=["misspelled-metric", "key-with-section", "every-trial-failed"])
def test_a_search_that_cannot_succeed_says_why(tmp_path, penguins_examples, setting, message):
    done = subprocess.run([str(Path(sys.executable).with_name("tfpipe")), "tune", "--examples", penguins_examples,
                           "--out", str(tmp_path), "--set", "tune.space={learning_rate: {values: [0.003, 0.03]}}",
                           "--set", setting, "--set", "train.epochs=1", "--set", "train.tensorboard.profile_batch=[]"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == (1 if "completed" in message else 2), done.stderr[-2000:]  # 2: fix the config
    assert message in done.stderr
    assert not (tmp_path / "trials" / "trial-001").exists()  # stopped at the first trial, or before any
