"""The train step: examples + schema in; a Keras model, checkpoints, TensorBoard logs and history out.

Outputs under `out/`: `model.keras`, `model_summary.txt`, `history.json`,
`history.csv`, `metrics.json` (the eval split), `checkpoints/epoch-NNN.weights.h5`,
`logs/` (TensorBoard: train, validation, confusion_matrix, samples, profile)
and `backup/` (BackupAndRestore: a re-run after a kill resumes where it stopped).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import keras
import tensorflow as tf

from components.common import io
from components.common.config import TrainConfig
from components.common.schema import Schema
from components.train import callbacks as callbacks_lib
from components.train import inputs, models, strategy as strategy_lib
from components.train.task import Task, task_of

log = logging.getLogger("tfpipe.train")


@dataclass(frozen=True)
class TrainResult:
    out: str
    metrics: dict
    epochs: int
    seconds: float


def compile_model(model: keras.Model, cfg: TrainConfig, task: Task) -> None:
    optimizer = keras.optimizers.get({"class_name": cfg.optimizer, "config": {"learning_rate": cfg.learning_rate}})
    if task.kind == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        loss, metrics = "mse", ["mae"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=cfg.jit_compile or False)


def run(cfg: TrainConfig, examples: str, out: str) -> TrainResult:
    cfg.validate()
    start = time.perf_counter()
    schema = Schema.read(examples)
    task = task_of(schema)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = strategy_lib.make(cfg.strategy, cfg.tpu)
    single = models.is_single_input(cfg.model)
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas

    def data(split: str, training: bool) -> tf.data.Dataset:
        return inputs.dataset(examples, split, schema, task, global_batch, training=training, single_input=single,
                              shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed)

    train_data, eval_data = data("train", True), data("eval", False)
    paths = _paths(out)
    with strategy.scope():
        model = models.build(schema, task, cfg.model)
        compile_model(model, cfg, task)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    if strategy_lib.is_chief():
        io.write_text(f"{out}/model_summary.txt", "\n".join(lines) + "\n")
    if cfg.tensorboard.write_graph and strategy_lib.is_chief():
        callbacks_lib.log_graph(paths["logs"], model, eval_data)
    image = next((f.name for f in schema.inputs if f.type == "image"), None)
    if image is not None and cfg.tensorboard.sample_images:
        callbacks_lib.log_sample_images(paths["logs"], train_data, None if single else image,
                                        cfg.tensorboard.sample_images)
    history = model.fit(train_data, validation_data=eval_data, epochs=cfg.epochs, verbose=2,
                        callbacks=callbacks_lib.build(cfg, paths, task, eval_data))
    metrics = model.evaluate(eval_data, verbose=0, return_dict=True)
    if strategy_lib.is_chief():
        _save(model, out, history.history, metrics)
    seconds = time.perf_counter() - start
    log.info("train: %d epochs in %.1fs; eval %s", len(history.history.get("loss", [])), seconds,
             ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return TrainResult(out, metrics, len(history.history.get("loss", [])), seconds)


def _paths(out: str) -> dict[str, str]:
    base = strategy_lib.output_dir(out, "train")
    paths = {"logs": f"{out}/logs" if strategy_lib.is_chief() else f"{base}/logs",
             "checkpoints": f"{base}/checkpoints", "backup": f"{out}/backup", "csv": f"{base}/history.csv"}
    for key in ("logs", "checkpoints"):
        io.makedirs(paths[key])
    return paths


def _save(model: keras.Model, out: str, history: dict, metrics: dict) -> None:
    """The model appears whole or not at all: saved under a temporary name, then renamed."""
    tmp = f"{out}/.model-{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, f"{out}/model.keras")
    io.write_json(f"{out}/history.json", {k: [float(v) for v in vs] for k, vs in history.items()})
    io.write_json(f"{out}/metrics.json", {k: float(v) for k, v in metrics.items()})


def load_model(out: str) -> keras.Model:
    """The trained model, in Keras safe mode (no arbitrary code from the file)."""
    from components.train import models as _  # registers SchemaModel

    return keras.saving.load_model(f"{out}/model.keras", safe_mode=True)



