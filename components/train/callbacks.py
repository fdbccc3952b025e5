"""The Keras callbacks a config asks for, plus TensorBoard images tfpipe adds.

The learning rate schedule runs through `LearningRateScheduler`, which puts
the rate in the epoch logs, so TensorBoard shows it as `epoch_learning_rate`.
For classifiers a confusion-matrix figure of the eval split is logged as an
image each epoch; for image models, a grid of sample inputs once.
"""

from __future__ import annotations

import io
import logging
import math

import keras
import numpy as np
import tensorflow as tf

from components.common.config import TrainConfig
from components.train import strategy as strategy_lib
from components.train.task import Task, TrainError

log = logging.getLogger("tfpipe.train")


def learning_rate(cfg: TrainConfig):
    """epoch -> learning rate, for the configured schedule (the chapter's step schedule included)."""
    base = cfg.learning_rate

    def schedule(epoch: int, lr: float = base) -> float:
        if cfg.lr_schedule == "step":
            value = base
            for boundary, v in zip(cfg.lr_boundaries, cfg.lr_values):
                if epoch > boundary:
                    value = v
            return float(value)
        if cfg.lr_schedule == "cosine":
            return float(base * 0.5 * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1))))
        if cfg.lr_schedule == "exponential":
            return float(base * cfg.lr_decay ** epoch)
        return float(base)

    return schedule


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, written by the chief alone and read by every worker.

    Every worker must restart from the same state, and workers writing the
    same files at once would corrupt them, so only the chief saves and deletes.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.model._initial_epoch:
            log.info("resuming after epoch %d from the backup in %s", self.model._initial_epoch, self.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        if strategy_lib.is_chief():
            super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if strategy_lib.is_chief():
            super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        if strategy_lib.is_chief():
            super().on_train_end(logs)


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, but failing the step with the epoch and step where the loss went bad."""

    epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise TrainError(f"loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}; "
                             "lower train.learning_rate or check the input data")


class ConfusionMatrixImage(keras.callbacks.Callback):
    """Logs the eval split's confusion matrix as a TensorBoard image at the end of each epoch."""

    def __init__(self, logdir: str, data: tf.data.Dataset, task: Task):
        super().__init__()
        self.writer = tf.summary.create_file_writer(f"{logdir}/confusion_matrix")
        self.data = data
        self.task = task

    def on_epoch_end(self, epoch, logs=None):
        truth, predicted = [], []
        for x, y in self.data:
            truth.append(y.numpy())
            predicted.append(np.argmax(self.model(x, training=False), axis=-1))
        n = len(self.task.classes)
        matrix = tf.math.confusion_matrix(np.concatenate(truth), np.concatenate(predicted), num_classes=n).numpy()
        with self.writer.as_default():
            tf.summary.image("confusion_matrix", plot_matrix(matrix, self.task.classes), step=epoch)
        self.writer.flush()


def plot_matrix(matrix: np.ndarray, classes) -> tf.Tensor:
    """A confusion matrix as a [1, h, w, 4] PNG-decoded image tensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.0, 0.45 * len(classes) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=80)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > matrix.max() / 2 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return tf.expand_dims(tf.image.decode_png(buf.getvalue(), channels=4), 0)


def log_sample_images(logdir: str, data: tf.data.Dataset, image_name: str | None, count: int) -> None:
    """A grid of training inputs, so that people see what the model sees."""
    for x, _ in data.take(1):
        images = x if image_name is None else x[image_name]
        writer = tf.summary.create_file_writer(f"{logdir}/samples")
        with writer.as_default():
            tf.summary.image("training_samples", images[:count], step=0, max_outputs=count)
        writer.close()


def log_graph(logdir: str, model: keras.Model, data: tf.data.Dataset) -> None:
    """The op graph of the model's forward pass, for TensorBoard's Graphs dashboard.

    Keras 3's TensorBoard callback writes only the conceptual `keras` graph, so
    the op graph is traced here with `tf.summary.trace_on`.
    """
    forward = tf.function(lambda x: model(x, training=False))
    for x, _ in data.take(1):
        writer = tf.summary.create_file_writer(f"{logdir}/graph")
        tf.summary.trace_on(graph=True, profiler=False)
        forward(x)
        with writer.as_default():
            tf.summary.trace_export("model", step=0)
        writer.close()


def build(cfg: TrainConfig, out: dict[str, str], task: Task, eval_data: tf.data.Dataset) -> list:
    tb = cfg.tensorboard
    callbacks = [
        keras.callbacks.LearningRateScheduler(learning_rate(cfg)),
        TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(f"{out['checkpoints']}/epoch-{{epoch:03d}}.weights.h5",
                                        save_weights_only=True),
        keras.callbacks.CSVLogger(out["csv"], append=True),
    ]
    if cfg.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(patience=cfg.early_stopping_patience,
                                                       restore_best_weights=True))
    if task.kind == "classification" and tb.confusion_matrix:
        callbacks.append(ConfusionMatrixImage(out["logs"], eval_data, task))
    callbacks.append(keras.callbacks.TensorBoard(
        out["logs"], histogram_freq=tb.histogram_freq, write_graph=tb.write_graph, write_images=tb.write_images,
        update_freq=int(tb.update_freq) if tb.update_freq.isdigit() else tb.update_freq,
        profile_batch=tuple(tb.profile_batch) if tb.profile_batch else 0))
    # Last, so that an epoch's checkpoint, logs and CSV row are all written before the backup marks it done.
    callbacks.append(BackupAndRestore(out["backup"]))
    return callbacks
