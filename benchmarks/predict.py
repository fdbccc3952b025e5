"""Batch scoring speed and memory: `tfpipe predict` against Keras' `model.predict` on the same rows held in memory.

    .venv/bin/python benchmarks/predict.py [--rows 100000] [--scale 10] [--batch-size 8192] [--repeat 3]

Generates churn-like data (benchmarks/evaluate.py's: 8 numbers, 3
categories, a binary label; seed 0), ingests `--rows` and `--rows * --scale`
rows, trains a tiny model (one hidden layer of 16) on the small set and
exports it as version 1. Each measurement runs in a fresh process that
reports rows/s (TensorFlow's and tfpipe's imports left out on both sides)
and its peak RSS (VmHWM):
the predict step over every split of the small and of the large examples
(reading the GZIP TFRecords, scoring them with the SavedModel, writing
Parquet), and the baseline, the Keras model's `model.predict` on the small
set's and the large set's features already parsed into memory (only the call
is timed; predict's time includes loading the SavedModel, a few tenths of a
second, which the small set does not amortize). Each is the fastest of
`--repeat` runs taken in turn, since the machine's other work moves single
runs by half. Targets: on the large set, predict
rows/s at least 0.8x the baseline's; the large set's peak RSS at most 1.3x the
small one's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate import generate, measured, model  # noqa: E402 (after the path is set)

SPEED_TARGET, RSS_TARGET = 0.8, 1.3

PREDICT = """
from components.common.config import PredictConfig
from components.predict import model, run
started = time.perf_counter()  # imported, as the baseline's modules are: the run is timed, the model load included
result = run(PredictConfig(batch_size=BATCH), model.resolve(HOME + "/churn", 1), OUT, examples=EXAMPLES)
rows = result.rows
"""

KERAS = """
from components.common import reader
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import task_of
schema = Schema.read(EXAMPLES)
task = task_of(schema)
keras_model = load_model(MODEL, schema)
parts = [x for split in ("train", "eval", "test")
         for x, _ in reader.dataset(EXAMPLES, split, schema, task, BATCH, training=False)]
features = {name: tf.concat([p[name] for p in parts], axis=0) for name in parts[0]}  # strings as tf.string
started = time.perf_counter()  # the rows are in memory: only the predictions are timed
outputs = keras_model.predict(features, batch_size=BATCH, verbose=0)
rows = len(outputs)
"""


def examples(tmp: Path, rows: int, seed: int) -> str:
    from components.common.config import IngestConfig
    from components.ingest import run

    out = tmp / f"examples-{rows}"
    source = generate(tmp / f"churn-{rows}.csv", rows, seed)
    run(IngestConfig(source=str(source), label="churned"), str(out))
    source.unlink()
    return str(out)


def exported(tmp: Path, model_dir: str, examples_dir: str) -> str:
    from components.common.config import ExportConfig
    from components.export import run

    run(ExportConfig(model_name="churn"), model_dir, examples_dir, str(tmp / "home" / "churn"))
    return str(tmp / "home" / "churn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the small set")
    parser.add_argument("--scale", type=int, default=10, help="the large set has this many times more")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3, help="each measurement's fastest of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as tmp:
        tmp = Path(tmp)
        small = examples(tmp, args.rows, seed=0)
        large = examples(tmp, args.rows * args.scale, seed=1)
        trained = model(tmp, small)
        exported(tmp, trained, small)
        bodies = {"predict_small": (PREDICT, small), "predict_large": (PREDICT, large),
                  "keras_predict_small": (KERAS, small), "keras_predict_large": (KERAS, large)}
        tries = {name: [] for name in bodies}
        for _ in range(args.repeat):  # in turn, so that a busy moment of the machine falls on each alike
            for name, (body, data) in bodies.items():
                tries[name].append(measured(body, tmp, trained, data, args.batch_size))
        runs = {name: max(found, key=lambda run: run["rows_per_s"]) for name, found in tries.items()}
    speed = {size: round(runs[f"predict_{size}"]["rows_per_s"] / runs[f"keras_predict_{size}"]["rows_per_s"], 2)
             for size in ("small", "large")}
    growth = runs["predict_large"]["peak_rss_mib"] / runs["predict_small"]["peak_rss_mib"]
    print(f"target (predict rows/s >= {SPEED_TARGET}x model.predict in memory, on the large set): "
          f"{'met' if speed['large'] >= SPEED_TARGET else 'NOT met'}")
    print(f"target (large set's peak RSS <= {RSS_TARGET}x the small one's): "
          f"{'met' if growth <= RSS_TARGET else 'NOT met'}")
    each = {name: [run["rows_per_s"] for run in found] for name, found in tries.items()}  # the spread, in turn
    print(json.dumps({**runs, "each_rows_per_s": each, "predict_over_model_predict": speed,
                      "rss_large_over_small": round(growth, 2)}, indent=2))


if __name__ == "__main__":
    main()
