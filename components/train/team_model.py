"""The team's own model (`train.model.module`): built with tfpipe's inputs and encodings, checked on one batch.

The function gets the arguments it names (components.common.model_module). What it returns is checked
before training starts and before anything is written: a `keras.Model`, taking only inputs tfpipe
offers, answering one batch of the train split with the task's output (probabilities that sum to one
over `task.classes`, or one value per row), and surviving a save and a safe-mode load (a Lambda layer or
an unregistered custom class would not). Each failure names the module, the function and what to change.

The model is then made to take every input the schema has, as tfpipe's own models do, so that evaluate,
export, What-If and serving feed it the same way; features it does not use are inputs that go nowhere.
"""

from __future__ import annotations

import tempfile

import keras
import numpy as np
import tensorflow as tf

from components.common import model_loading, model_module
from components.common.config import ModelConfig
from components.common.errors import TfpipeError
from components.common.model_module import ModuleError
from components.common.schema import Schema
from components.common.task import Task
from components.train import models


def build(schema: Schema, task: Task, cfg: ModelConfig, train_data: tf.data.Dataset) -> keras.Model:
    """The module's model for this schema and task, checked; `train_data` is offered for `adapt()`."""
    where = f"train.model.module {cfg.module}: {cfg.function}()"
    function = model_module.builder(cfg)
    everything = {f.name: models.model_input(f) for f in schema.inputs}
    inputs = {name: tensor for name, tensor in everything.items() if name != schema.key}
    encoded = {f.name: models.encode(f, inputs[f.name], cfg, train_data) for f in schema.inputs if f.name in inputs}
    offered = {"inputs": inputs, "encoded": encoded, "schema": schema, "task": task, "params": dict(cfg.params),
               "train_data": train_data}
    try:
        model = function(**model_module.arguments(function, offered))
    except TfpipeError:
        raise
    except Exception as e:
        raise ModuleError(f"{where} failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
        raise ModuleError(f"{where} returned {type(model).__name__}; expected a functional or subclassed "
                          f"keras.Model built from `inputs` (a dict of feature name -> keras.Input)")
    _answer_one_batch(model, task, train_data, where)
    model = _taking_every_input(model, everything, where)
    _check_serializable(model, where)
    return model


def _answer_one_batch(model: keras.Model, task: Task, train_data: tf.data.Dataset, where: str) -> None:
    """The dry build: one batch in, the task's output out."""
    features, _ = next(iter(train_data.take(1)))
    names = model_loading.input_names(model)
    if names is not None:
        unknown = sorted(set(names) - set(features))
        if unknown:
            raise ModuleError(f"{where}: the model takes {unknown}, which are not features tfpipe offers; build it "
                              f"from `inputs` ({sorted(features)})")
        features = {name: features[name] for name in names}
    try:
        output = np.asarray(model(features, training=False), np.float64)
    except Exception as e:
        raise ModuleError(f"{where}: the model fails on a batch of the train split: {type(e).__name__}: {e}") from e
    rows = len(next(iter(features.values())))
    if task.kind == "regression":
        if output.shape not in ((rows,), (rows, 1)):
            raise ModuleError(f"{where}: a regression model answers one value per row, shape ({rows}, 1); this one "
                              f"answers {output.shape} for {rows} rows")
        return
    expected = (rows, len(task.classes))
    if output.shape != expected:
        raise ModuleError(f"{where}: the model answers shape {output.shape} for {rows} rows; expected {expected}: "
                          f"probabilities over the {len(task.classes)} classes {list(task.classes)}")
    if output.min() < 0 or output.max() > 1 or not np.allclose(output.sum(axis=1), 1.0, atol=1e-3):
        raise ModuleError(f"{where}: the outputs are not probabilities (each row should sum to 1; the first sums to "
                          f"{output[0].sum():.4g}); end the model with a softmax layer rather than logits")


def _taking_every_input(model: keras.Model, everything: dict, where: str) -> keras.Model:
    """The model as one that takes every schema input. A functional model built from the offered inputs is
    rewired (its layers stay where they are); any other is called as one layer of a new functional model."""
    names = model_loading.input_names(model)
    if names is not None and sorted(names) == sorted(everything):
        return model
    offered = {id(tensor) for tensor in everything.values()}
    symbolic = all(id(tensor) in offered for tensor in _symbolic_inputs(model))
    taken = {name: everything[name] for name in (names or everything) if name in everything}
    outputs = model.outputs if symbolic else model(taken)
    whole = keras.Model(everything, outputs, name=model.name)
    if model.compiled:
        whole.compile_from_config(model.get_compile_config())
    return whole


def _symbolic_inputs(model: keras.Model) -> list:
    """A functional model's input tensors; [None] for a subclassed one, which has none to rewire."""
    try:
        return list(model.inputs or [None])
    except AttributeError:
        return [None]


def _check_serializable(model: keras.Model, where: str) -> None:
    """A save and a safe-mode load, as every later step will load it."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model.save(f"{tmp}/model.keras")
            keras.saving.load_model(f"{tmp}/model.keras", safe_mode=True, compile=False)
        except Exception as e:
            raise ModuleError(f"{where}: Keras cannot save and reload the model in safe mode: {type(e).__name__}: "
                              f"{e}. Register custom layers, losses and metrics with "
                              f"@keras.saving.register_keras_serializable() and give them get_config(); replace "
                              f"Lambda layers with such a layer") from e
