"""The custom training loop: `tf.GradientTape` in a `@tf.function` step, run on every replica.

The chapter's alternative to `fit()`, for people who want to see or change the
step. Each step is `strategy.run` of a per-replica function: per-example losses
are averaged over the global batch (`tf.nn.compute_average_loss`), so that the
gradients the optimizer sums across replicas equal those of one big batch, and
metric variables aggregate across replicas by SUM. With `train.clip_norm` the
gradient flowing back from the loss passes through the chapter's
`tf.custom_gradient` clip-by-norm function.

The loop drives the same Keras callbacks as `fit()` (checkpoints, backup and
restore, the learning-rate schedule, TensorBoard, CSV log, early stopping, the
NaN check), so both modes write the same outputs, logs and history.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from components.common.config import TrainConfig
from components.common.task import Task
from components.train.metrics import task_metrics


@tf.custom_gradient
def clip_gradient_by_norm(x, norm):
    """The identity going forward; going back, the incoming gradient is clipped to `norm` (the chapter's example)."""
    y = tf.identity(x)

    def grad_fn(dresult):
        return [tf.clip_by_norm(dresult, norm), None]

    return y, grad_fn


def per_example(loss) -> keras.losses.Loss:
    """The compiled loss, one value per example: the loop averages it over the global batch itself."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config({**loss.get_config(), "reduction": None})
    return keras.losses.get(loss)


class CustomLoop:
    """`fit` and `evaluate` for a compiled model, written out with GradientTape and `strategy.run`."""

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy, task: Task, cfg: TrainConfig):
        self.model, self.strategy, self.task = model, strategy, task
        self.clip_norm = cfg.clip_norm
        self.loss_fn = per_example(model.loss)
        with strategy.scope():
            self.train_metrics = [keras.metrics.Mean(name="loss"), *task_metrics(task)]
            self.eval_metrics = [keras.metrics.Mean(name="loss"), *task_metrics(task)]
            # Built here, inside the scope, so its slots are mirrored like the weights (and restorable).
            model.optimizer.build(model.trainable_variables)
        train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, reduce_retracing=True)
        test_step = tf.function(self._test_step, jit_compile=cfg.jit_compile, reduce_retracing=True)
        self._train = tf.function(lambda x, y: self._run(train_step, self.train_metrics, x, y), reduce_retracing=True)
        self._test = tf.function(lambda x, y: self._run(test_step, self.eval_metrics, x, y), reduce_retracing=True)

    def _run(self, step, metrics: list[keras.metrics.Metric], x, y) -> dict[str, tf.Tensor]:
        self.strategy.run(step, args=(x, y))
        return {m.name: m.result() for m in metrics}  # read in cross-replica context: the all-replica values

    def _outputs(self, x, y, training: bool):
        output = self.model(x, training=training)
        if self.task.kind == "regression":
            y = tf.reshape(y, [-1, 1])
        return y, output

    def _train_step(self, x, y) -> None:
        model = self.model
        with tf.GradientTape() as tape:
            y, output = self._outputs(x, y, training=True)
            if self.clip_norm:
                output = clip_gradient_by_norm(output, self.clip_norm)
            per_example = self.loss_fn(y, output)
            loss = tf.nn.compute_average_loss(per_example)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = model.optimizer.scale_loss(loss)  # the loss scale under mixed precision, else unchanged
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        self._update(self.train_metrics, y, output, per_example)

    def _test_step(self, x, y) -> None:
        y, output = self._outputs(x, y, training=False)
        self._update(self.eval_metrics, y, output, self.loss_fn(y, output))

    @staticmethod
    def _update(metrics: list[keras.metrics.Metric], y, output, per_example) -> None:
        loss, *others = metrics
        loss.update_state(per_example)
        for metric in others:
            metric.update_state(y, output)

    def fit(self, train: tf.data.Dataset, validation: tf.data.Dataset, epochs: int,
            callbacks: list[keras.callbacks.Callback]) -> keras.callbacks.History:
        model = self.model
        hooks = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=True, verbose=2,
                                             epochs=epochs, steps=None, model=model)
        train_dist = self.strategy.experimental_distribute_dataset(train)
        validation_dist = self.strategy.experimental_distribute_dataset(validation)
        model.stop_training = False
        hooks.on_train_begin()
        # BackupAndRestore reports the epoch to resume from here, as fit() reads it.
        first = model._initial_epoch or 0
        epoch_logs: dict[str, float] = {}
        for epoch in range(first, epochs):
            for metric in self.train_metrics:
                metric.reset_state()
            hooks.on_epoch_begin(epoch)
            for step, (x, y) in enumerate(train_dist):
                hooks.on_train_batch_begin(step)
                hooks.on_train_batch_end(step, self._train(x, y))
                if model.stop_training:
                    break
            epoch_logs = {m.name: float(m.result()) for m in self.train_metrics}
            epoch_logs.update({f"val_{k}": v for k, v in self._evaluate(validation_dist, hooks).items()})
            hooks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        hooks.on_train_end(epoch_logs)
        return model.history

    def evaluate(self, data: tf.data.Dataset) -> dict[str, float]:
        return self._evaluate(self.strategy.experimental_distribute_dataset(data),
                              keras.callbacks.CallbackList(model=self.model))

    def _evaluate(self, data, hooks: keras.callbacks.CallbackList) -> dict[str, float]:
        for metric in self.eval_metrics:
            metric.reset_state()
        hooks.on_test_begin()
        for step, (x, y) in enumerate(data):
            hooks.on_test_batch_begin(step)
            hooks.on_test_batch_end(step, self._test(x, y))
        logs = {m.name: float(m.result()) for m in self.eval_metrics}
        hooks.on_test_end(logs)
        return logs
