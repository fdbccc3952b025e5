"""Metrics tfpipe adds to Keras' own.

`ConfusionMatrix` keeps the matrix as its state and reports balanced
accuracy (the mean of per-class recalls, honest on imbalanced classes). Both
loops update it during the validation pass they make anyway, so the
confusion-matrix image costs no second pass over the eval split.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from components.common.task import Task


@keras.saving.register_keras_serializable(package="tfpipe")
class ConfusionMatrix(keras.metrics.Metric):
    """Counts of (true class, predicted class); the result is balanced accuracy."""

    def __init__(self, num_classes: int, name: str = "balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.counts = self.add_variable((num_classes, num_classes), "zeros", dtype="float32", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        predicted = tf.argmax(y_pred, axis=-1)
        self.counts.assign_add(tf.math.confusion_matrix(labels, predicted, self.num_classes, dtype=tf.float32,
                                                        weights=sample_weight))

    def result(self):
        support = tf.reduce_sum(self.counts, axis=1)
        recall = tf.math.divide_no_nan(tf.linalg.diag_part(self.counts), support)
        return tf.math.divide_no_nan(tf.reduce_sum(recall), tf.math.count_nonzero(support, dtype=tf.float32))

    def matrix(self) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(self.counts)).astype(np.int64)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def task_metrics(task: Task) -> list[keras.metrics.Metric]:
    """Fresh metric objects for the task, named as both loops and `model.evaluate` report them."""
    if task.kind == "classification":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), ConfusionMatrix(len(task.classes))]
    return [keras.metrics.MeanAbsoluteError(name="mae")]
