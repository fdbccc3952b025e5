"""The Keras callbacks a config asks for, plus TensorBoard images tfpipe adds.

The learning rate schedule runs through `LearningRateScheduler`, which puts
the rate in the epoch logs, so TensorBoard shows it as `epoch_learning_rate`.
For classifiers a confusion-matrix figure of the eval split is logged as an
image each epoch; for image models, a grid of sample inputs once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from components.common.config import TrainConfig
from components.common.task import Task
from components.train import strategy as strategy_lib
from components.train.errors import TrainError
from components.train.metrics import ConfusionMatrix
from components.train.paths import TrainPaths

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


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard, without the per-batch work that writes nothing.

    With `update_freq="epoch"` Keras still calls `tf.summary.scalar` for every log of every batch; with no
    default writer each call writes nothing, but together they cost a tenth or more of a small model's step
    (benchmarks/train.py, part 4). The logs are not passed on then; graph, profile and step timing stay.
    """

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, None if self.update_freq == "epoch" else logs)


class ConfusionMatrixImage(keras.callbacks.Callback):
    """Logs the eval split's confusion matrix as a TensorBoard image at the end of each epoch.

    The matrix is the state of the validation pass's `ConfusionMatrix` metric,
    read when the epoch ends (every worker reads it: under MultiWorkerMirrored
    the read is a collective).
    """

    def __init__(self, logdir: str, task: Task, matrix: ConfusionMatrix):
        super().__init__()
        self.writer = tf.summary.create_file_writer(f"{logdir}/confusion_matrix")
        self.matrix = matrix
        self.figure = MatrixFigure(task.classes)

    def on_epoch_end(self, epoch, logs=None):
        image = self.figure.render(self.matrix.matrix())
        with self.writer.as_default():
            tf.summary.image("confusion_matrix", image, step=epoch)
        self.writer.flush()


class MatrixFigure:
    """A confusion-matrix figure drawn once and updated in place: redrawing costs ~20 ms, a new figure ~100 ms."""

    def __init__(self, classes):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(classes)
        size = max(3.0, 0.45 * n + 1.5)
        self.figure = Figure(figsize=(size, size), dpi=80)
        self.canvas = FigureCanvasAgg(self.figure)
        ax = self.figure.add_subplot()
        self.image = ax.imshow(np.zeros((n, n)), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), classes, rotation=45)
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        self.texts = {(i, j): ax.text(j, i, "", ha="center", va="center", fontsize=8)
                      for i in range(n) for j in range(n)}
        self.figure.tight_layout()

    def render(self, matrix: np.ndarray) -> tf.Tensor:
        """The figure for `matrix`, as a [1, height, width, 4] uint8 image tensor."""
        self.image.set_data(matrix)
        self.image.set_clim(0, max(int(matrix.max()), 1))
        for (i, j), text in self.texts.items():
            text.set_text(str(matrix[i, j]))
            text.set_color("white" if matrix[i, j] > matrix.max() / 2 else "black")
        self.canvas.draw()
        return tf.constant(np.asarray(self.canvas.buffer_rgba())[None])


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


class CSVLogger(keras.callbacks.CSVLogger):
    """Keras's CSV log on any file system: at the end Keras asks its file whether it is `closed`, which the files
    of tf.io.gfile (gs://) cannot say, so a run on Cloud Storage failed after its last epoch."""

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None


def build(cfg: TrainConfig, out: TrainPaths, task: Task, validation_metrics: list[keras.metrics.Metric],
          extra: Sequence[keras.callbacks.Callback] = ()) -> list:
    """The callbacks, given the metric objects the validation pass updates; `extra` ones go before the backup."""
    tb = cfg.tensorboard
    callbacks = [
        keras.callbacks.LearningRateScheduler(learning_rate(cfg)),
        TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(f"{out.checkpoints}/epoch-{{epoch:03d}}.weights.h5",
                                        save_weights_only=True),
        CSVLogger(out.csv, append=True),
    ]
    if cfg.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(patience=cfg.early_stopping_patience,
                                                       restore_best_weights=True))
    matrix = next((m for m in validation_metrics if isinstance(m, ConfusionMatrix)), None)
    if matrix is not None and tb.confusion_matrix:
        callbacks.append(ConfusionMatrixImage(out.logs, task, matrix))
    callbacks.append(TensorBoard(
        out.logs, histogram_freq=tb.histogram_freq, write_graph=tb.write_graph, write_images=tb.write_images,
        write_steps_per_second=True,
        update_freq=int(tb.update_freq) if tb.update_freq.isdigit() else tb.update_freq,
        # The chief alone profiles: the other workers' logs are temporary, and stopping TensorFlow's profiler on
        # them corrupts the heap now and then (TraceMeRecorder::Consume; tensorflow/tensorboard#3149).
        profile_batch=tuple(tb.profile_batch) if tb.profile_batch and strategy_lib.is_chief() else 0))
    callbacks.extend(extra)
    # Last, so that an epoch's checkpoint, logs and CSV row are all written before the backup marks it done.
    callbacks.append(BackupAndRestore(out.backup))
    return callbacks
