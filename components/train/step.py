"""The train step: examples + schema in; a Keras model, checkpoints, TensorBoard logs and history out.

Outputs under `out/`: `model.keras`, `model_summary.txt`, `history.json`,
`history.csv`, `metrics.json` (the eval split), `training.json` (loop,
strategy, workers, replicas, global batch, time), `checkpoints/epoch-NNN.weights.h5`,
`logs/` (TensorBoard: train, validation, confusion_matrix, samples, graph,
profile) and, while a run is unfinished, `backup/` (BackupAndRestore: the same
command run again after a kill resumes where it stopped).

The loop is Keras' `fit` or the custom GradientTape loop (`loop.py`); both
drive the same callbacks, so the outputs do not depend on the choice.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import keras
import tensorflow as tf

from components.common import io, reader
from components.common.config import TrainConfig
from components.common.errors import TfpipeError
from components.common.model_module import ModuleRecord
from components.common.schema import Schema
from components.common.task import Task, task_of
from components.train import callbacks as callbacks_lib, models, strategy as strategy_lib, team_model, warm_start
from components.train.errors import TrainError
from components.train.loop import CustomLoop
from components.train.metrics import task_metrics
from components.train.paths import TrainPaths

log = logging.getLogger("tfpipe.train")


@dataclass(frozen=True)
class TrainResult:
    out: str
    metrics: dict
    epochs: int  # completed in this call (a resumed run counts only those after the restart)
    seconds: float


def compile_model(model: keras.Model, cfg: TrainConfig, task: Task) -> list[keras.metrics.Metric]:
    """Compiles with the config's optimizer and the task's loss; returns the metric objects (fit's validation
    pass updates these same objects).

    A model that a team's module compiled keeps its optimizer, loss and metrics; tfpipe's task metrics
    join them (evaluation, the blessing and the confusion matrix read those), replacing any of the same name.
    """
    metrics = task_metrics(task)
    if model.compiled:
        ours = {m.name for m in metrics}
        theirs = [keras.metrics.get(m) for m in model.get_compile_config().get("metrics") or []]
        theirs = [m for m in theirs if getattr(m, "name", m) not in ours]
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=[*metrics, *theirs],
                      jit_compile=cfg.jit_compile)
        return metrics
    optimizer = keras.optimizers.get({"class_name": cfg.optimizer, "config": {"learning_rate": cfg.learning_rate}})
    model.compile(optimizer=optimizer, loss=task.loss, metrics=metrics, jit_compile=cfg.jit_compile)
    return metrics


def run(cfg: TrainConfig, examples: str, out: str, extra_callbacks: Sequence[keras.callbacks.Callback] = (),
        label: str = "") -> TrainResult:
    """Trains on `examples` into `out`; `extra_callbacks` run with tfpipe's own (the tuner's early stopping).

    `label`, when given, is the label the run's config names (`ingest.label`): examples whose schema
    names another are an error, not a model of the wrong target. A run that stops on an error the
    user must fix (a NaN loss, bad examples) removes what it wrote into `out`; a killed run keeps
    its backup, so the same command resumes it.
    """
    cfg = replace(cfg, model=cfg.model.resolved())
    cfg.validate()
    before = set(io.gfile().listdir(out)) if io.exists(out) else None
    try:
        return _train(cfg, examples, out, extra_callbacks, label)
    except TfpipeError:
        _remove_new_entries(out, before)
        raise


def _train(cfg: TrainConfig, examples: str, out: str, extra_callbacks: Sequence[keras.callbacks.Callback],
           label: str) -> TrainResult:
    start = time.perf_counter()
    # First: MultiWorkerMirroredStrategy configures collective ops, which must precede any other TensorFlow op.
    strategy = strategy_lib.make(cfg.strategy, cfg.tpu)
    schema = Schema.read(examples)
    if label and label != schema.label:
        raise TrainError(f"{examples}/schema.json: the examples' label is {schema.label!r} but the config's "
                         f"ingest.label is {label!r}; ingest again with this config, or set "
                         f"ingest.label={schema.label}")
    task = task_of(schema)
    reader.check_examples(examples, schema, task)
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.mixed_precision else "float32")
    single = models.is_single_input(cfg.model)
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas

    def data(split: str, training: bool) -> tf.data.Dataset:
        return reader.dataset(examples, split, schema, task, global_batch, training=training, single_input=single,
                              shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed)

    train_data, eval_data = data("train", True), data("eval", False)
    log.info("train: %s with %d replica(s) in sync, global batch %d", type(strategy).__name__, replicas,
             global_batch)
    with strategy.scope():
        # A module's model is checked on one batch here, before anything is written.
        # Text features' vocabularies are adapted on the train split, read once more in order.
        model = (team_model.build(schema, task, cfg.model, data("train", False)) if cfg.model.module
                 else models.build(schema, task, cfg.model, data("train", False)))
        warm = warm_start.apply(model, cfg.warm_start, schema, cfg.warm_start_fallback)
        compiled_metrics = compile_model(model, cfg, task)
    paths = TrainPaths.of(out)
    paths.prepare()
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    if strategy_lib.is_chief():
        io.write_text(f"{out}/model_summary.txt", "\n".join(lines) + "\n")
    if warm.source and strategy_lib.is_chief():
        with tf.summary.create_file_writer(f"{paths.logs}/train").as_default():
            tf.summary.text("warm_start", f"weights of {warm.source} ({warm.layers} layers)", step=0)
    if cfg.tensorboard.write_graph and strategy_lib.is_chief():
        callbacks_lib.log_graph(paths.logs, model, eval_data)
    image = next((f.name for f in schema.inputs if f.type == "image"), None)
    if image is not None and cfg.tensorboard.sample_images:
        callbacks_lib.log_sample_images(paths.logs, train_data, None if single else image,
                                        cfg.tensorboard.sample_images)
    loop_name = _loop_for(cfg, strategy)
    if loop_name == "custom":
        loop = CustomLoop(model, strategy, task, cfg)
        callbacks = callbacks_lib.build(cfg, paths, task, loop.eval_metrics, extra_callbacks)
        history = loop.fit(train_data, eval_data, cfg.epochs, callbacks)
        metrics = loop.evaluate(eval_data)
    else:
        callbacks = callbacks_lib.build(cfg, paths, task, compiled_metrics, extra_callbacks)
        history = model.fit(train_data, validation_data=eval_data, epochs=cfg.epochs, verbose=2, callbacks=callbacks,
                            shuffle=False)  # the dataset shuffles itself
        metrics = model.evaluate(eval_data, verbose=0, return_dict=True)
    epochs = len(history.history.get("loss", []))
    seconds = time.perf_counter() - start
    if strategy_lib.is_chief():
        module = ModuleRecord.of(cfg.model) if cfg.model.module else None
        if module is not None:  # before model.keras: whoever sees the model finds what it needs to load it
            module.write(out, cfg.model)
        _save(model, out, paths.csv, metrics)
        io.write_json(f"{out}/training.json", {
            "loop": loop_name, "strategy": type(strategy).__name__, "workers": max(1, strategy_lib.worker_count()),
            "replicas": replicas, "global_batch_size": global_batch, "epochs_run": epochs, "seconds": seconds,
            "warm_start": warm.to_json(), "module": module.to_json() if module else None,
            "params": dict(cfg.model.params)})
    else:
        io.remove_tree(paths.worker)  # this worker's temporary copies; the chief's outputs are the real ones
    log.info("train: %d epochs in %.1fs; eval %s", epochs, seconds,
             ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return TrainResult(out, metrics, epochs, seconds)


def _loop_for(cfg: TrainConfig, strategy: tf.distribute.Strategy) -> str:
    """The configured loop, except that multi-worker runs use the custom loop.

    Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585: it reduces
    nested batches and scalar logs along a batch axis); the custom loop drives the same callbacks
    and writes the same outputs, so the run goes on with it and says so.
    """
    if cfg.loop == "fit" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        log.warning("train.loop=fit: Keras 3's fit() cannot run under MultiWorkerMirroredStrategy "
                    "(keras-team/keras#20585); using the custom loop, which writes the same outputs")
        return "custom"
    return cfg.loop


def _remove_new_entries(out: str, before: set[str] | None) -> None:
    """What a failed run added to `out` (all of `out` when the run made it); what was there before stays."""
    if before is None:
        io.remove_tree(out)
        return
    for name in set(io.gfile().listdir(out)) - before if io.exists(out) else ():
        path = f"{out}/{name.rstrip('/')}"
        if io.gfile().isdir(path):
            io.remove_tree(path)
        else:
            io.gfile().remove(path)


def _save(model: keras.Model, out: str, csv_log: str, metrics: dict) -> None:
    """The model appears whole or not at all: saved under a temporary name, then renamed.

    The history comes from the CSV log, which a resumed run appends to, so it
    covers every epoch, not only those since the last restart.
    """
    tmp = f"{out}/.model-{os.getpid()}.keras"
    model.save(tmp)
    io.replace(tmp, f"{out}/model.keras")
    with io.open_binary(csv_log) as f:
        rows = list(csv.DictReader(f.read().decode().splitlines()))
    by_epoch = {int(row["epoch"]): row for row in rows}  # an epoch replayed after a kill: its last record
    history = {k: [float(by_epoch[e][k]) for e in sorted(by_epoch)] for k in (rows[0] if rows else {})
               if k != "epoch"}
    io.write_json(f"{out}/history.json", history)
    io.write_json(f"{out}/metrics.json", {k: float(v) for k, v in metrics.items()})
