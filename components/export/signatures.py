"""The serving module: a Keras model wrapped in named, documented signatures.

- `serving_default`: raw features by name (numbers and strings as `[batch]`
  tensors, images as `[batch, height, width, channels]` uint8, lists as
  `[batch, longest]` with shorter rows padded by `schema.LIST_PADDING`) -> for a
  classifier `probabilities` `[batch, classes]`, `class_ids` `[batch]` (int64)
  and `classes` `[batch]` (the predicted label); for a regressor
  `predictions` `[batch]`.
- `predict_examples`: serialized `tf.train.Example` strings `[batch]`, parsed
  with the schema (missing features take the schema's defaults) -> the same
  outputs.
- `classification` (method `tensorflow/serving/classify`): `inputs`
  serialized examples -> `classes` `[batch, classes]` (every class name) and
  `scores` `[batch, classes]`: what TF Serving's Classify API reads.
- `regression` (method `tensorflow/serving/regress`): `inputs` -> `outputs`
  `[batch]`: what TF Serving's Regress API reads.

Preprocessing is inside the model, so these graphs are everything serving needs.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components.common.schema import Schema
from components.common.signatures import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    OutputName as O,
    SignatureName as S,
    feature_specs,
    pad,
    unpad,
)
from components.common.task import Task


class ServingModule(tf.Module):
    def __init__(self, model: keras.Model, schema: Schema, task: Task):
        super().__init__(name="tfpipe_serving")
        self.model = model
        self.task = task
        self.single_input = isinstance(model, keras.Sequential)
        self.image_names = [f.name for f in schema.inputs if f.type == "image"]
        self.list_types = {f.name: f.element_type for f in schema.inputs if f.is_list}
        self.channels = {f.name: f.image.channels for f in schema.inputs if f.type == "image"}
        self.spec = {k: v for k, v in schema.parse_spec().items() if k != schema.label}
        self.classes = tf.constant(list(task.classes) or [""])
        specs = feature_specs(schema)
        self.serving_default = tf.function(self._raw, input_signature=[specs])
        examples = [tf.TensorSpec([None], tf.string, name="inputs")]
        self.predict_examples = tf.function(lambda inputs: self._raw(self.parse(inputs)), input_signature=examples)
        self.classification = tf.function(self._classify, input_signature=examples)
        self.regression = tf.function(self._regress, input_signature=examples)

    def signatures(self) -> dict:
        common = {S.SERVING_DEFAULT: self.serving_default, S.PREDICT_EXAMPLES: self.predict_examples}
        if self.task.kind == "classification":
            return {**common, S.CLASSIFICATION: self.classification}
        return {**common, S.REGRESSION: self.regression}

    def parse(self, serialized):
        """Serialized examples -> raw features by name, as `serving_default` takes them."""
        parsed = tf.io.parse_example(serialized, self.spec)
        for name in self.image_names:
            parsed[name] = tf.map_fn(lambda png, c=self.channels[name]: tf.io.decode_png(png, channels=c),
                                     parsed[name], fn_output_signature=tf.uint8)
        return parsed

    def served(self, features: dict) -> dict:
        """Parsed features (`parse`) as a client sends them to `serving_default`: lists padded."""
        return {k: pad(v, self.list_types[k]) if k in self.list_types else v for k, v in features.items()}

    def _model_outputs(self, features):
        if self.single_input:
            return self.model(features[self.image_names[0]], training=False)
        return self.model({k: self._model_input(k, v) for k, v in features.items()}, training=False)

    def _model_input(self, name: str, value):
        """A raw feature as the model takes it: `[batch, 1]`, images as they are, lists ragged (parsed examples'
        lists already are; a served `[batch, longest]` one is unpadded)."""
        if name in self.image_names or isinstance(value, tf.RaggedTensor):
            return value
        if name in self.list_types:
            return unpad(value, self.list_types[name])
        return tf.reshape(value, [-1, 1])

    def _raw(self, features):
        outputs = tf.cast(self._model_outputs(features), tf.float32)
        if self.task.kind == "regression":
            return {O.PREDICTIONS: tf.reshape(outputs, [-1])}
        ids = tf.argmax(outputs, axis=-1)
        return {O.PROBABILITIES: outputs, O.CLASS_IDS: ids, O.CLASSES: tf.gather(self.classes, ids)}

    def _classify(self, inputs):
        scores = tf.cast(self._model_outputs(self.parse(inputs)), tf.float32)
        classes = tf.tile(self.classes[None, :], [tf.shape(scores)[0], 1])
        return {O.CLASSES: classes, O.SCORES: scores}

    def _regress(self, inputs):
        return {O.OUTPUTS: tf.reshape(tf.cast(self._model_outputs(self.parse(inputs)), tf.float32), [-1])}


def set_method_names(saved_model_dir: str) -> None:
    """Marks the classify / regress signatures with TF Serving's method names.

    `tf.saved_model.save` writes every signature as a predict signature; TF
    Serving's Classify and Regress APIs accept only signatures whose
    `method_name` says classify or regress, so the SavedModel proto is
    rewritten with them.
    """
    path = f"{saved_model_dir}/saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        for name, method in ((S.CLASSIFICATION, CLASSIFY_METHOD), (S.REGRESSION, REGRESS_METHOD)):
            if name in meta_graph.signature_def:
                meta_graph.signature_def[name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto.SerializeToString())
