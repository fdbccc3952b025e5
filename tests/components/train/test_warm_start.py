"""Warm start from an earlier model: its weights are the new run's starting point, or a clear error, or cold."""

import json

import numpy as np
import pytest

from components.common import reader
from components.common.config import ModelConfig, TensorBoardConfig, TrainConfig
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import task_of
from components.train import TrainError, run

QUIET = TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False, confusion_matrix=False)


def predictions(model_dir: str, examples: str) -> np.ndarray:
    schema = Schema.read(examples)
    data = reader.dataset(examples, "eval", schema, task_of(schema), 256, training=False)
    return np.concatenate([load_model(model_dir).predict(x, verbose=0) for x, _ in data])


def test_a_warm_start_begins_where_the_earlier_model_ended(tmp_path, penguins_examples, penguins_model):
    # A learning rate so small that one epoch leaves the copied weights as they were.
    cfg = TrainConfig(epochs=1, learning_rate=1e-12, optimizer="sgd", tensorboard=QUIET,
                      warm_start=f"{penguins_model}/model.keras")
    run(cfg, penguins_examples, str(tmp_path))
    training = json.loads((tmp_path / "training.json").read_text())
    assert training["warm_start"]["source"] == f"{penguins_model}/model.keras"
    assert training["warm_start"]["layers"] >= 3
    np.testing.assert_allclose(predictions(str(tmp_path), penguins_examples),
                               predictions(penguins_model, penguins_examples), atol=1e-5)


def test_another_architecture_is_an_error_naming_the_layer_or_a_cold_start(tmp_path, penguins_examples,
                                                                              penguins_model):
    earlier = f"{penguins_model}/model.keras"
    narrower = TrainConfig(epochs=1, tensorboard=QUIET, model=ModelConfig(hidden_units=(8, 4)), warm_start=earlier)
    with pytest.raises(TrainError, match=r"layer 'dense_0' is Dense with weights \[\(\d+, 8\), \(8,\)\]; the "
                                         r"warm-start model's layer 'dense_0' is Dense with weights"):
        run(narrower, penguins_examples, str(tmp_path / "strict"))
    shallower = TrainConfig(epochs=1, tensorboard=QUIET, model=ModelConfig(hidden_units=(8,)), warm_start=earlier,
                            warm_start_fallback="cold")
    run(shallower, penguins_examples, str(tmp_path / "cold"))
    warm = json.loads((tmp_path / "cold" / "training.json").read_text())["warm_start"]
    assert warm["source"] == ""
    assert "train.warm_start needs the same architecture" in warm["note"]
