"""The layers every tfpipe model is built from, and the Keras classes a saved model names.

Preprocessing lives inside the model (numbers standardised with the schema's
statistics, strings looked up in its vocabulary, text split into tokens by a
TextVectorization adapted on the train split, images rescaled), so serving
runs the graph training ran. The classes here are registered with Keras when
this module is imported: any step can then load a model file in safe mode
without importing the train step.
"""

from __future__ import annotations

import json

import keras
import tensorflow as tf

from components.common import config as config_lib, text
from components.common.config import ModelConfig
from components.common.schema import Feature, Schema
from components.common.task import Task

# A text feature's vocabulary: the most frequent tokens of the train split, the rest one out-of-vocabulary index.
TEXT_MAX_TOKENS = 20000


def kernel_size(cfg: ModelConfig, feature: Feature) -> int:
    """The chapter's 5x5 kernels, shrunk so that a valid convolution still fits the image."""
    return max(1, min(cfg.kernel_size, feature.image.height // 2, feature.image.width // 2))


def head(task: Task) -> keras.layers.Layer:
    if task.kind == "classification":
        return keras.layers.Dense(task.num_outputs, activation="softmax", dtype="float32", name="probabilities")
    return keras.layers.Dense(1, dtype="float32", name="prediction")


def preprocessing(feature: Feature, cfg: ModelConfig, train_data: tf.data.Dataset | None = None
                  ) -> list[keras.layers.Layer]:
    """The layers that turn one raw feature into floats, set from the schema's statistics (a text feature's
    from `train_data`, see `text_encoding`)."""
    if feature.type == "text":
        return text_encoding(feature, cfg, train_data)
    if feature.is_list:
        return list_encoding(feature, cfg)
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
    k = kernel_size(cfg, feature)
    return [keras.layers.Rescaling(1 / 255, name=f"{feature.name}_rescale"),
            keras.layers.Conv2D(cfg.filters, k, padding="valid", activation="relu", name=f"{feature.name}_conv1"),
            keras.layers.Conv2D(cfg.filters, k, padding="same", activation="relu", name=f"{feature.name}_conv2"),
            keras.layers.MaxPooling2D(cfg.pool_size, name=f"{feature.name}_pool"),
            keras.layers.Flatten(name=f"{feature.name}_flat")]


def text_encoding(feature: Feature, cfg: ModelConfig, train_data: tf.data.Dataset) -> list[keras.layers.Layer]:
    """A TextVectorization adapted on the train split's values of the feature, then the mean of its tokens'
    embeddings (padding masked out); with `embedding_dim` 0, which of the tokens a text holds (multi-hot).

    Adapted on `train_data` (raw `(features, label)` batches of the train split), not set from ingest's
    top tokens: those count every split, and keep `ingest.vocab_top_n` tokens where a model wants thousands.
    The standardisation is Keras' default, the one ingest's statistics count tokens with (`common.text`).
    """
    name = feature.name
    vectorize = keras.layers.TextVectorization(
        max_tokens=TEXT_MAX_TOKENS, standardize=text.STANDARDIZE, split=text.SPLIT,
        output_mode="int" if cfg.embedding_dim else "multi_hot", name=f"{name}_vectorize")
    vectorize.adapt(train_data.map(lambda features, _: features[name]))
    if not cfg.embedding_dim:
        return [vectorize]
    return [vectorize,
            keras.layers.Embedding(vectorize.vocabulary_size(), cfg.embedding_dim, mask_zero=True,
                                   name=f"{name}_embed"),
            keras.layers.GlobalAveragePooling1D(name=f"{name}_mean")]


def list_encoding(feature: Feature, cfg: ModelConfig) -> list[keras.layers.Layer]:
    """A list's values pooled into one vector whatever its length: strings looked up in the schema's vocabulary
    of values, then the mean of their embeddings (with `embedding_dim` 0, a bag: which values the list holds);
    numbers standardised with the values' statistics, then their mean, lowest and highest, with the list's
    length standardised beside them. An empty list is all zeros but its length."""
    name, s = feature.name, feature.stats
    if feature.element_type == "string":
        vocab = feature.vocabulary or [""]
        if cfg.embedding_dim:
            return [keras.layers.StringLookup(vocabulary=vocab, name=f"{name}_lookup"),
                    MeanEmbedding(len(vocab) + 1, cfg.embedding_dim, name=f"{name}_embed")]
        # On ragged ids the bag comes out as int64 counts; the float it is anywhere else.
        return [keras.layers.StringLookup(vocabulary=vocab, output_mode="multi_hot", name=f"{name}_bag"),
                CastToFloat(name=f"{name}_bag_float")]
    length = s.get("length", {})
    return [ListSummary(s.get("mean", 0.0), s.get("std") or 1.0, length.get("mean", 0.0), length.get("std") or 1.0,
                        name=f"{name}_summary")]


def _ragged(x) -> tf.RaggedTensor:
    """Lists reach a model ragged; only Keras' symbolic build passes them dense (with no padding to drop)."""
    return x if isinstance(x, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(x)


@keras.saving.register_keras_serializable(package="tfpipe")
class MeanEmbedding(keras.layers.Layer):
    """The mean of the embeddings of a list's ids (ragged `[batch, None]` in, `[batch, output_dim]` out).

    Keras' own pooling layers take dense, masked input; a list's ids stay ragged, so no padding is embedded.
    """

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embedding = keras.layers.Embedding(self.input_dim, self.output_dim, name="embedding")

    def build(self, input_shape):
        self.embedding.build((None,))

    def call(self, ids):
        ids = _ragged(ids)
        vectors = tf.ragged.map_flat_values(self.embedding, ids)
        counts = tf.cast(ids.row_lengths(), vectors.dtype)[:, None]
        return tf.math.divide_no_nan(tf.reduce_sum(vectors, axis=1), counts)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="tfpipe")
class ListSummary(keras.layers.Layer):
    """A list of numbers as four: the mean, lowest and highest of its standardised values, and its standardised
    length (ragged `[batch, None]` in, `[batch, 4]` out)."""

    def __init__(self, mean: float, std: float, length_mean: float, length_std: float, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = float(mean), float(std)
        self.length_mean, self.length_std = float(length_mean), float(length_std)

    def call(self, x):
        z = (tf.cast(_ragged(x), tf.float32) - self.mean) / self.std
        n = tf.cast(z.row_lengths(), tf.float32)
        present = n > 0
        pooled = [tf.math.divide_no_nan(tf.reduce_sum(z, axis=1), n),
                  tf.where(present, tf.reduce_min(z, axis=1), 0.0),
                  tf.where(present, tf.reduce_max(z, axis=1), 0.0),
                  (n - self.length_mean) / self.length_std]
        return tf.stack(pooled, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "length_mean": self.length_mean,
                "length_std": self.length_std}


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


@keras.saving.register_keras_serializable(package="tfpipe")
class SchemaModel(keras.Model):
    """A subclassed model built from the schema; `get_config` keeps it loadable from `.keras` files."""

    def __init__(self, schema_json: str, task: dict, model_cfg: dict, **kwargs):
        super().__init__(**kwargs)
        self.schema_json, self.task_dict, self.model_cfg = schema_json, task, model_cfg
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
        self.head = head(task_obj)

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
