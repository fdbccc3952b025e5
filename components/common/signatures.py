"""The serving contract: signature names, output names, method names and input specs.

Export writes these names into the SavedModel; serve, the infra check and
whatif read them back. They live here so that no step imports another to
agree on a name.
"""

from __future__ import annotations

import tensorflow as tf

from components.common.schema import LIST_PADDING, Schema, with_lists

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DTYPES = with_lists({"int": tf.int64, "float": tf.float32, "string": tf.string, "text": tf.string, "image": tf.uint8})


class SignatureName:
    SERVING_DEFAULT = "serving_default"  # raw features by name
    PREDICT_EXAMPLES = "predict_examples"  # serialized tf.train.Example strings
    CLASSIFICATION = "classification"  # TF Serving's Classify API
    REGRESSION = "regression"  # TF Serving's Regress API


class OutputName:
    PROBABILITIES = "probabilities"  # classifier: [batch, classes]
    CLASS_IDS = "class_ids"  # classifier: [batch] int64
    CLASSES = "classes"  # classifier: [batch] predicted label; Classify: [batch, classes] every label
    PREDICTIONS = "predictions"  # regressor: [batch]
    SCORES = "scores"  # Classify: [batch, classes]
    OUTPUTS = "outputs"  # Regress: [batch]


def feature_specs(schema: Schema) -> dict[str, tf.TensorSpec]:
    """The raw-feature inputs of `serving_default`: `[batch]` per column (a text whole, as one string),
    `[batch, h, w, c]` uint8 per image, `[batch, longest]` per list, each row padded with `LIST_PADDING`."""
    specs = {}
    for f in schema.inputs:
        shape = [None, f.image.height, f.image.width, f.image.channels] if f.type == "image" \
            else [None, None] if f.is_list else [None]
        specs[f.name] = tf.TensorSpec(shape, DTYPES[f.type], name=f.name)
    return specs


def pad(rows: tf.RaggedTensor, element_type: str) -> tf.Tensor:
    """Ragged list rows as `serving_default` takes them: `[batch, longest]`, shorter rows padded (`unpad` undoes it)."""
    return rows.to_tensor(default_value=LIST_PADDING[element_type])


def unpad(padded: tf.Tensor, element_type: str) -> tf.RaggedTensor:
    """A served `[batch, longest]` list input as the ragged rows the model takes: every padding value dropped."""
    if element_type == "float":
        return tf.ragged.boolean_mask(padded, tf.logical_not(tf.math.is_nan(padded)))
    return tf.ragged.boolean_mask(padded, tf.not_equal(padded, LIST_PADDING[element_type]))
