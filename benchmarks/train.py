"""Training speed: the input pipeline, tfpipe's training against a plain `model.fit`, 1 and 2 workers.

    .venv/bin/python benchmarks/train.py [--examples 8000] [--size 28] [--epochs 5] [--repeats 2] [--rows 200000]
                                         [--parts 1,2,3,4]

Makes a fixed image data set (digits upsampled to MNIST's 28x28 with random
shifts and noise, seed 0), ingests it with tfpipe, and trains the chapter's
CNN (batch 64) in one process, printing:

1. steps/s of `fit` on the TFRecord input (first pass: read, parse, decode)
   divided by steps/s on the same data from tf.data's in-memory cache (later
   passes), with the train function traced beforehand. Target >= 0.9: the
   input pipeline never starves the model.
2. examples/s of tfpipe's training (`components.train.run`, with its callbacks,
   validation and per-epoch confusion matrix, read back from TensorBoard's
   `epoch_steps_per_second`) divided by a plain chapter-style
   `model.fit(numpy arrays, validation_data=...)` of the same model, batch size
   and data. Target >= 0.95. Epochs after the first (tracing) are compared.
3. examples/s of a 2-worker MultiWorkerMirroredStrategy run next to 1 worker,
   both through `tfpipe train` with the custom loop. On a 2-core machine two
   workers share the cores, so this shows the overhead of the collectives.
4. a team's own model (`train.model.module`: the wide & deep example,
   pipelines/configs/models/wide_deep.py) on the generated churn table
   (`--rows`, ingested as tfpipe ingests it, key column dropped): examples/s of
   tfpipe's training divided by the same model's `fit` on the same train split
   held in memory (tensors, shuffled each epoch), batch 64. Target >= 0.95. Its steps take about 1 ms, so
   short epochs show the per-epoch writes (checkpoint, backup, logs): at 40,000 rows (0.45 s epochs) they
   cost about a tenth.

On a shared 2-core machine single epochs vary by 20% or more, so each side
of a ratio is measured `--repeats` times, alternating, and its best epoch
(after the first, which traces) is kept, as `timeit` keeps the best time.
With a GPU it also reports mixed precision and XLA on and off. Nothing needs one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (after the log level is set)

BATCH = 64


def make_images(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """PNG class folders of digits, upsampled to size x size, shifted and noised so no two are alike."""
    from PIL import Image

    from components.data import digits

    images, targets = digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        j = i % len(images)
        small = Image.fromarray((images[j] * (255 / 16)).astype(np.uint8))
        big = np.asarray(small.resize((size, size), Image.BILINEAR), dtype=np.float64)
        big = np.roll(big, rng.integers(-2, 3, size=2), axis=(0, 1)) + rng.normal(0, 12, big.shape)
        Image.fromarray(big.clip(0, 255).astype(np.uint8)).save(folder / str(targets[j]) / f"{i:06d}.png")
    return folder


def steps_per_second(logs: Path) -> list[float]:
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(logs / "train"), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("epoch_steps_per_second")]


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def input_ratio(examples: str, cfg) -> tuple[float, float]:
    """(TFRecord steps/s, cached steps/s) for one model, traced first on another copy of the pipeline."""
    from components.common import reader
    from components.common.schema import Schema
    from components.common.task import task_of
    from components.train import models, step

    schema = Schema.read(examples)
    task = task_of(schema)

    def data():
        return reader.dataset(examples, "train", schema, task, BATCH, training=True, single_input=True)

    model = models.build(schema, task, cfg.model)
    step.compile_model(model, cfg, task)
    model.fit(data(), epochs=1, verbose=0)  # traces full and partial batches
    timer = EpochTimer()
    model.fit(data(), epochs=3, verbose=0, callbacks=[timer])  # pass 1 reads TFRecords and fills the cache
    steps = len(list(data()))
    return steps / timer.seconds[0], steps / min(timer.seconds[1:])


def numpy_arrays(examples: str, split: str):
    from components.common import reader
    from components.common.schema import Schema
    from components.common.task import task_of

    schema = Schema.read(examples)
    ds = reader.dataset(examples, split, schema, task_of(schema), 4096, training=False, single_input=True)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(xs), np.concatenate(ys)


def plain_fit(examples: str, cfg, epochs: int) -> float:
    """Examples/s of the chapter's way: numpy arrays straight into model.fit, no callbacks."""
    from components.common.schema import Schema
    from components.common.task import task_of
    from components.train import models, step

    schema = Schema.read(examples)
    task = task_of(schema)
    x, y = numpy_arrays(examples, "train")
    validation = numpy_arrays(examples, "eval")
    model = models.build(schema, task, cfg.model)
    step.compile_model(model, cfg, task)
    timer = EpochTimer()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, validation_data=validation, shuffle=True, verbose=0,
              callbacks=[timer])
    return len(x) / min(timer.seconds[1:])


def tfpipe_fit(examples: str, cfg, out: Path) -> float:
    from components import train

    train.run(cfg, examples, str(out))
    return max(steps_per_second(out / "logs")[1:]) * BATCH


def churn_examples(root: Path, rows: int) -> str:
    """The generated churn table, `rows` rows of one day, ingested (the customer id dropped)."""
    import csv
    import datetime

    from components.common.config import IngestConfig
    from components.data import churn
    from components.ingest import run as ingest

    header, body = churn.rows(datetime.date(2026, 11, 1), count=rows)
    (root / "churn").mkdir()
    with open(root / "churn" / "churn.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    ingest(IngestConfig(source=str(root / "churn" / "churn.csv"), label="churned", drop=("customer_id",), shards=2),
           str(root / "churn-examples"))
    return str(root / "churn-examples")


def module_tfpipe(examples: str, cfg, out: Path) -> float:
    """Examples/s of tfpipe's training of the module's model, timed as `module_fit` times its fit (whole epochs,
    validation included)."""
    from components import train
    from components.common.schema import Schema

    timer = EpochTimer()
    train.run(cfg, examples, str(out), extra_callbacks=[timer])
    return Schema.read(examples).splits["train"] / min(timer.seconds[1:])


def module_fit(examples: str, cfg, epochs: int) -> float:
    """Examples/s of the module's model fit on the train split held in memory, shuffled each epoch."""
    from components.common import reader
    from components.common.schema import Schema
    from components.common.task import task_of
    from components.train import step, team_model

    schema = Schema.read(examples)
    task = task_of(schema)

    def in_memory(split: str, shuffle: bool):
        """The split as tensors in memory, batched (Keras takes no numpy string arrays)."""
        batches = list(reader.dataset(examples, split, schema, task, 4096, training=False))
        x = {k: tf.concat([features[k] for features, _ in batches], 0) for k in batches[0][0]}
        y = tf.concat([labels for _, labels in batches], 0)
        data = tf.data.Dataset.from_tensor_slices((x, y))
        return len(y), (data.shuffle(len(y), seed=0) if shuffle else data).batch(BATCH).prefetch(2)

    import tensorflow as tf

    rows, train = in_memory("train", shuffle=True)
    model = team_model.build(schema, task, cfg.model, in_memory("train", shuffle=False)[1])
    step.compile_model(model, cfg, task)
    timer = EpochTimer()
    model.fit(train, epochs=epochs, validation_data=in_memory("eval", shuffle=False)[1], verbose=0, callbacks=[timer])
    return rows / min(timer.seconds[1:])


def workers_run(examples: str, out: Path, workers: int, epochs: int) -> float:
    """Examples/s of `tfpipe train --workers N` (global batch N x BATCH), epochs after the first."""
    command = [sys.executable, "-m", "components", "train", "--examples", examples, "--out", str(out),
               "--workers", str(workers), "--set", "train.loop=custom", "--set", f"train.epochs={epochs}",
               "--set", f"train.batch_size={BATCH}", "--set", "train.model.api=sequential",
               "--set", "train.tensorboard.profile_batch=[]", "--set", "train.tensorboard.histogram_freq=0"]
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return max(steps_per_second(out / "logs")[1:]) * BATCH * workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=8000)
    parser.add_argument("--size", type=int, default=28, help="image height and width")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=200000, help="rows of the churn table for the module's model")
    parser.add_argument("--parts", default="1,2,3,4", help="which measurements to make (numbers above)")
    args = parser.parse_args()
    import tensorflow as tf

    from components.common.config import IngestConfig, ModelConfig, TensorBoardConfig, TrainConfig
    from components.ingest import run as ingest

    parts = {int(part) for part in args.parts.split(",")}
    quiet = TensorBoardConfig(profile_batch=(), histogram_freq=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = TrainConfig(epochs=args.epochs, batch_size=BATCH, model=ModelConfig(api="sequential"), tensorboard=quiet)
        if parts & {1, 2, 3} or tf.config.list_physical_devices("GPU"):
            start = time.perf_counter()
            images = make_images(root / "png", args.examples, args.size)
            result = ingest(IngestConfig(source=str(images), shards=4), str(root / "examples"))
            print(f"data: {result.rows:,} images {args.size}x{args.size} ({result.splits['train']:,} train), "
                  f"made and ingested in {time.perf_counter() - start:.0f}s")
        examples = str(root / "examples")

        if 1 in parts:
            records, cached = map(max, zip(*(input_ratio(examples, cfg) for _ in range(args.repeats))))
            print(f"1. input:   TFRecords {records:7.1f} steps/s, cached {cached:7.1f} steps/s, "
                  f"ratio {records / cached:.2f} (target >= 0.9)")

        if 2 in parts:
            ours, plain = 0.0, 0.0
            for i in range(args.repeats):
                ours = max(ours, tfpipe_fit(examples, cfg, root / f"tfpipe-{i}"))
                plain = max(plain, plain_fit(examples, cfg, args.epochs))
            print(f"2. fit:     tfpipe {ours:7.0f} examples/s, plain model.fit(numpy) {plain:7.0f} examples/s, "
                  f"ratio {ours / plain:.2f} (target >= 0.95)")

        if 3 in parts:
            one = max(workers_run(examples, root / f"w1-{i}", 1, args.epochs) for i in range(args.repeats))
            two = max(workers_run(examples, root / f"w2-{i}", 2, args.epochs) for i in range(args.repeats))
            print(f"3. workers: 1 worker {one:7.0f} examples/s, 2 workers {two:7.0f} examples/s, "
                  f"ratio {two / one:.2f} (on {os.cpu_count()} cores the workers share them: overhead, not speed-up)")

        if 4 in parts:
            module = ModelConfig(module=str(ROOT / "pipelines/configs/models/wide_deep.py"),
                                 params={"deep_units": [64, 32], "cross_layers": 2}).resolved()
            tabular = dataclasses.replace(cfg, model=module)
            churn = churn_examples(root, args.rows)
            ours, plain = 0.0, 0.0
            for i in range(args.repeats):  # alternating, the best epoch of each side kept
                ours = max(ours, module_tfpipe(churn, tabular, root / f"module-{i}"))
                plain = max(plain, module_fit(churn, tabular, args.epochs))
            print(f"4. module:  tfpipe {ours:7.0f} examples/s, the same model's fit in memory {plain:7.0f} examples/s, "
                  f"ratio {ours / plain:.2f} (target >= 0.95; wide & deep on {args.rows:,} churn rows)")

        if tf.config.list_physical_devices("GPU"):
            print("5. GPU:")
            for mixed in (False, True):
                for xla in (False, True):
                    variant = dataclasses.replace(cfg, mixed_precision=mixed, jit_compile=xla)
                    speed = tfpipe_fit(examples, variant, root / f"gpu-{mixed}-{xla}")
                    print(f"   mixed precision {'on ' if mixed else 'off'}, XLA {'on ' if xla else 'off'}: "
                          f"{speed:8.0f} examples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
