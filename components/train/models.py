"""Models from config with each of Keras' three APIs, preprocessing inside.

Every model takes raw features as the schema names them: numbers are
normalised with the schema's mean and variance, strings looked up in its
vocabulary then embedded (or one-hot encoded), text split into tokens by a
TextVectorization adapted on the train split and its tokens' embeddings
averaged (functional API and modules only), images rescaled to [0, 1]. The
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
from components.common.layers import CastToFloat, SchemaModel, head, kernel_size, preprocessing
from components.common.schema import Feature, Schema
from components.common.task import Task
from components.train.errors import TrainError


def build(schema: Schema, task: Task, cfg: ModelConfig, train_data: tf.data.Dataset | None = None) -> keras.Model:
    """The model `cfg.api` names; `train_data` (raw batches of the train split) adapts text features' vocabularies.

    Only the functional API takes text: a sequential model has one image input, and the subclassed model
    rebuilds its layers from the config when loaded, where there is no train split to adapt a vocabulary on.
    """
    text = [f.name for f in schema.inputs if f.type == "text"]
    if text and cfg.api != "functional":
        raise TrainError(f"train.model.api={cfg.api}: the text feature(s) {text} need a TextVectorization adapted "
                         f"on the train split, which only the functional API builds here; set "
                         f"train.model.api=functional or build the model in train.model.module")
    if cfg.api == "functional":
        return functional(schema, task, cfg, train_data)
    builders = {"sequential": sequential, "subclass": subclass}
    return builders[cfg.api](schema, task, cfg)


def is_single_input(cfg: ModelConfig) -> bool:
    """Sequential models take one tensor, not a dict of features (a module's model takes the dict)."""
    return cfg.api == "sequential" and not cfg.module


def sequential(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    inputs = schema.inputs
    if len(inputs) != 1 or inputs[0].type != "image":
        raise TrainError(f"train.model.api=sequential takes exactly one image feature; the schema has "
                         f"{[f.name + ':' + f.type for f in inputs]} (use functional or subclass)")
    image = inputs[0]
    k = kernel_size(cfg, image)
    return keras.Sequential([
        keras.Input((image.image.height, image.image.width, image.image.channels), name=image.name),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(cfg.filters, k, padding="valid", activation="relu"),
        keras.layers.Conv2D(cfg.filters, k, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(cfg.pool_size),
        keras.layers.Dropout(cfg.dropout),
        keras.layers.Flatten(),
        head(task),
    ], name="sequential_cnn")


def model_input(feature: Feature) -> keras.KerasTensor:
    """The `keras.Input` of one raw feature, as the reader feeds it and the serving signature receives it."""
    if feature.type == "image":
        shape = (feature.image.height, feature.image.width, feature.image.channels)
        return keras.Input(shape, dtype="uint8", name=feature.name)
    dtype = {"int": "int64", "float": "float32", "string": "string", "text": "string"}[feature.element_type]
    if feature.is_list:
        return keras.Input((None,), dtype=dtype, ragged=True, name=feature.name)
    return keras.Input((1,), dtype=dtype, name=feature.name)


def _apply(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def encode(feature: Feature, x: keras.KerasTensor, cfg: ModelConfig,
           train_data: tf.data.Dataset | None = None) -> keras.KerasTensor:
    """tfpipe's default encoding of one raw input: the floats its preprocessing branch makes (a text
    feature's vocabulary adapted on `train_data`)."""
    if feature.type == "int":
        x = CastToFloat(name=f"{feature.name}_float")(x)
    if feature.type == "text" and train_data is None:
        raise TrainError(f"feature {feature.name!r} is text: its encoding is adapted on the train split, and no "
                         f"train split was given")
    return _apply(preprocessing(feature, cfg, train_data), x)


def functional(schema: Schema, task: Task, cfg: ModelConfig, train_data: tf.data.Dataset | None = None
               ) -> keras.Model:
    inputs = {f.name: model_input(f) for f in schema.inputs}
    branches = [encode(f, inputs[f.name], cfg, train_data) for f in schema.inputs]
    x = keras.layers.Concatenate(name="features")(branches) if len(branches) > 1 else branches[0]
    for i, units in enumerate(cfg.hidden_units):
        h = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if cfg.residual and x.shape[-1] == units:
            h = keras.layers.Add(name=f"residual_{i}")([x, h])
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(h) if cfg.dropout else h
    return keras.Model(inputs, head(task)(x), name="functional")


def subclass(schema: Schema, task: Task, cfg: ModelConfig) -> keras.Model:
    from components.common.config import to_plain

    model = SchemaModel(schema.to_json(), {"kind": task.kind, "classes": list(task.classes)}, to_plain(cfg),
                        name="subclass")
    model({f.name: _example_value(f) if f.is_list else keras.ops.convert_to_tensor(_example_value(f))
           for f in schema.inputs})
    return model


def _example_value(feature: Feature):
    """A one-row input, to build the subclassed model's weights before training."""
    import numpy as np

    if feature.type == "image":
        return np.zeros((1, feature.image.height, feature.image.width, feature.image.channels), np.uint8)
    if feature.is_list:
        dtype = {"int": tf.int64, "float": tf.float32, "string": tf.string}[feature.element_type]
        return tf.RaggedTensor.from_row_lengths(tf.zeros([0], dtype), [0])
    if feature.type == "string":
        return tf.constant([[""]])
    return np.zeros((1, 1), np.int64 if feature.type == "int" else np.float32)
