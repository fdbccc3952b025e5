"""Models from config with each of Keras' three APIs, preprocessing inside.

Every model takes raw features as the schema names them: numbers are
normalised with the schema's mean and variance, strings looked up in its
vocabulary then embedded (or one-hot encoded), images rescaled to [0, 1]. The
same graph runs in training and serving, so there is no skew between them.

- sequential: the chapter's digits CNN (Conv2D valid, Conv2D same, MaxPooling,
  Dropout, Flatten, Dense softmax) on a single image input, kernels shrunk to fit
  small images.
- functional: one Input per feature, a preprocessing branch each, concatenated,
  then dense blocks, with residual connections when asked; image inputs get a
  convolutional branch.
- subclass: a `tf.keras.Model` subclass whose `call(inputs, training=False)` runs
  the same preprocessing and dense blocks.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from components.common.config import ModelConfig
from components.common.schema import Feature, Schema
from components.train.task import Task, TrainError


def build(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    builders = {"sequential": sequential, "functional": functional, "subclass": subclass}
    return builders[cfg.api](schema, task, cfg)


def is_single_input(cfg: ModelConfig) -> bool:
    """Sequential models take one tensor, not a dict of features."""
    return cfg.api == "sequential"


def _kernel(cfg: ModelConfig, feature: Feature) -> int:
    """The chapter's 5x5 kernels, shrunk so that a valid convolution still fits the image."""
    return max(1, min(cfg.kernel_size, feature.image.height // 2, feature.image.width // 2))


def _head(task: Task) -> keras.layers.Layer:
    if task.kind == "classification":
        return keras.layers.Dense(task.num_outputs, activation="softmax", dtype="float32", name="probabilities")
    return keras.layers.Dense(1, dtype="float32", name="prediction")


def sequential(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    inputs = schema.inputs
    if len(inputs) != 1 or inputs[0].type != "image":
        raise TrainError(f"train.model.api=sequential takes exactly one image feature; the schema has "
                         f"{[f.name + ':' + f.type for f in inputs]} (use functional or subclass)")
    image = inputs[0]
    k = _kernel(cfg, image)
    return keras.Sequential([
        keras.Input((image.image.height, image.image.width, image.image.channels), name=image.name),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(cfg.filters, k, padding="valid", activation="relu"),
        keras.layers.Conv2D(cfg.filters, k, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(cfg.pool_size),
        keras.layers.Dropout(cfg.dropout),
        keras.layers.Flatten(),
        _head(task),
    ], name="sequential_cnn")


def _input(feature: Feature) -> keras.KerasTensor:
    if feature.type == "image":
        shape = (feature.image.height, feature.image.width, feature.image.channels)
        return keras.Input(shape, dtype="uint8", name=feature.name)
    dtype = {"int": "int64", "float": "float32", "string": "string"}[feature.type]
    return keras.Input((1,), dtype=dtype, name=feature.name)


def preprocessing(feature: Feature, cfg: ModelConfig) -> list[keras.layers.Layer]:
    """The layers that turn one raw feature into floats, set from the schema's statistics."""
    if feature.is_numeric:
        return [Standardize(feature.stats.get("mean", 0.0), feature.stats.get("std") or 1.0,
                            name=f"{feature.name}_norm")]
    if feature.type == "string":
        vocab = feature.vocabulary or [""]
        if cfg.embedding_dim:
            return [keras.layers.StringLookup(vocabulary=vocab, name=f"{feature.name}_lookup"),
                    keras.layers.Embedding(len(vocab) + 1, cfg.embedding_dim, name=f"{feature.name}_embed"),
                    keras.layers.Flatten(name=f"{feature.name}_flat")]
        return [keras.layers.StringLookup(vocabulary=vocab, output_mode="one_hot", name=f"{feature.name}_onehot")]
    k = _kernel(cfg, feature)
    return [keras.layers.Rescaling(1 / 255, name=f"{feature.name}_rescale"),
            keras.layers.Conv2D(cfg.filters, k, padding="valid", activation="relu", name=f"{feature.name}_conv1"),
            keras.layers.Conv2D(cfg.filters, k, padding="same", activation="relu", name=f"{feature.name}_conv2"),
            keras.layers.MaxPooling2D(cfg.pool_size, name=f"{feature.name}_pool"),
            keras.layers.Flatten(name=f"{feature.name}_flat")]


def _apply(layers, x):
    for layer in layers:
        x = layer(x)
    return x


@keras.saving.register_keras_serializable(package="tfpipe")
class Standardize(keras.layers.Layer):
    """(x - mean) / std with the schema's statistics held as plain numbers in the config.

    Keras' Normalization layer, given a fixed mean and variance, keeps them as
    tensors made at build time, which a subclassed model rebuilt by `load_model`
    captures from a finished graph; plain numbers have no such problem.
    """

    def __init__(self, mean: float, std: float, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = float(mean), float(std)

    def call(self, x):
        return (keras.ops.cast(x, "float32") - self.mean) / self.std

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="tfpipe")
class CastToFloat(keras.layers.Layer):
    """int64 features to float32 before normalisation; a named layer, not a Lambda, so safe-mode loading works."""

    def call(self, x):
        return keras.ops.cast(x, "float32")


def functional(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    inputs = {f.name: _input(f) for f in schema.inputs}
    branches = []
    for f in schema.inputs:
        x = inputs[f.name]
        if f.is_numeric:
            x = CastToFloat(name=f"{f.name}_float")(x) if f.type == "int" else x
        branches.append(_apply(preprocessing(f, cfg), x))
    x = keras.layers.Concatenate(name="features")(branches) if len(branches) > 1 else branches[0]
    for i, units in enumerate(cfg.hidden_units):
        h = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if cfg.residual and x.shape[-1] == units:
            h = keras.layers.Add(name=f"residual_{i}")([x, h])
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(h) if cfg.dropout else h
    return keras.Model(inputs, _head(task)(x), name="functional")


@keras.saving.register_keras_serializable(package="tfpipe")
class SchemaModel(keras.Model):
    """A subclassed model built from the schema; `get_config` keeps it loadable from `.keras` files."""

    def __init__(self, schema_json: str, task: dict, model_cfg: dict, **kwargs):
        super().__init__(**kwargs)
        from components.common import config as config_lib

        self.schema_json, self.task_dict, self.model_cfg = schema_json, task, model_cfg
        import json

        schema = Schema.from_dict(json.loads(schema_json))
        cfg = config_lib.from_plain(ModelConfig, model_cfg)
        task_obj = Task(task["kind"], tuple(task["classes"]))
        self.features = schema.inputs
        self.branches = {f.name: preprocessing(f, cfg) for f in self.features}
        for name, layers in self.branches.items():
            for i, layer in enumerate(layers):
                setattr(self, f"pre_{name}_{i}", layer)
        self.hidden = [keras.layers.Dense(u, activation="relu") for u in cfg.hidden_units]
        self.drop = keras.layers.Dropout(cfg.dropout)
        self.head = _head(task_obj)

    def call(self, inputs, training=False):
        parts = []
        for f in self.features:
            x = inputs[f.name]
            if f.type == "int":
                x = tf.cast(x, tf.float32)
            for layer in self.branches[f.name]:
                x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
            parts.append(x)
        x = tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0]
        for layer in self.hidden:
            x = self.drop(layer(x), training=training)
        return self.head(x)

    def get_config(self):
        return {**super().get_config(), "schema_json": self.schema_json, "task": self.task_dict,
                "model_cfg": self.model_cfg}


def subclass(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    from components.common.config import to_plain

    model = SchemaModel(schema.to_json(), {"kind": task.kind, "classes": list(task.classes)}, to_plain(cfg),
                        name="subclass")
    model({f.name: keras.ops.convert_to_tensor(_example_value(f)) for f in schema.inputs})
    return model


def _example_value(feature: Feature):
    """A one-row input, to build the subclassed model's weights before training."""
    import numpy as np

    if feature.type == "image":
        return np.zeros((1, feature.image.height, feature.image.width, feature.image.channels), np.uint8)
    if feature.type == "string":
        return tf.constant([[""]])
    return np.zeros((1, 1), np.int64 if feature.type == "int" else np.float32)
