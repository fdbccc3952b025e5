"""Evaluation speed and memory on a large test split: the streaming step against the in-memory way, in one run.

    .venv/bin/python benchmarks/evaluate.py [--rows 200000] [--scale 10] [--batch-size 8192] [--no-beam]

Generates churn-like data (8 numbers, 3 categories, a binary label; seed 0),
ingests it with 90% of the rows in the test split, trains a tiny model
(one hidden layer of 16) on the small set's train split, then evaluates it on
`--rows` and `--rows * --scale` test rows with every feature sliced. Each
evaluation runs in a fresh process that reports its rows/s (TensorFlow's
import left out) and its peak RSS: VmHWM of /proc/self/status, the high-water
mark of the process's own address space. (`ru_maxrss` is no use here: Linux
carries the parent's peak into a child across fork and exec, so every child
of this process, which has trained a model, reported the same 1,078 MiB.)
The baseline is the in-memory way evaluate worked before (the whole split
and every prediction held, scikit-learn's metrics), on the small split;
unless `--no-beam`, the small split is also evaluated with `engine: beam` on
the local multi-process runner (its RSS is the launching process's; the
workers are processes of their own). Target: the large split's peak RSS at most
1.3x the small one's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUMBERS = ("tenure", "monthly_charges", "total_charges", "support_calls", "age", "usage_gb", "late_payments",
           "discount")
CATEGORIES = {"contract": ["month-to-month", "one-year", "two-year"], "payment": ["card", "bank", "check", "wallet"],
              "region": [f"region-{i}" for i in range(10)]}
TEST_SHARE = 0.9
RSS_TARGET = 1.3


def generate(path: Path, rows: int, seed: int = 0) -> Path:
    """A churn-like CSV, written in chunks so that millions of rows cost little memory."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write(",".join([*NUMBERS, *CATEGORIES, "churned"]) + "\n")
        for start in range(0, rows, 200_000):
            n = min(200_000, rows - start)
            numbers = rng.normal(size=(n, len(NUMBERS))).round(4)
            picks = {name: rng.integers(0, len(values), n) for name, values in CATEGORIES.items()}
            risk = numbers[:, 0] * -1.2 + numbers[:, 3] + 0.8 * (picks["contract"] == 0) + rng.normal(size=n)
            churned = (risk > 0.5).astype(int)
            columns = [np.char.mod("%.4f", numbers[:, i]) for i in range(len(NUMBERS))]
            columns += [np.array(values)[picks[name]] for name, values in CATEGORIES.items()]
            columns.append(churned.astype(str))
            f.writelines(",".join(row) + "\n" for row in zip(*columns))
    return path


def examples(tmp: Path, test_rows: int, seed: int) -> str:
    from components.common.config import IngestConfig, SplitRatios
    from components.ingest import run

    out = tmp / f"examples-{test_rows}"
    source = generate(tmp / f"churn-{test_rows}.csv", math.ceil(test_rows / TEST_SHARE), seed)
    share = (1 - TEST_SHARE) / 2
    run(IngestConfig(source=str(source), label="churned", split=SplitRatios(share, share, TEST_SHARE)), str(out))
    source.unlink()
    return str(out)


def model(tmp: Path, examples_dir: str) -> str:
    from components.common.config import ModelConfig, TensorBoardConfig, TrainConfig
    from components.train import run

    out = tmp / "model"
    run(TrainConfig(epochs=2, batch_size=256, learning_rate=0.01, model=ModelConfig(hidden_units=(16,)),
                    tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)),
        examples_dir, str(out))
    return str(out)


STREAMING = """
from components.common.config import BeamConfig, EvaluateConfig
from components.evaluate import run
result = run(EvaluateConfig(batch_size=BATCH, engine=ENGINE), MODEL, EXAMPLES, OUT, HOME, BeamConfig())
rows = int(result.metrics["count"])
"""

IN_MEMORY = """
import numpy as np
from sklearn import metrics as skm
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import task_of
from components.evaluate.step import predict, read_test_split
schema = Schema.read(EXAMPLES)
test = read_test_split(EXAMPLES, schema, task_of(schema), BATCH)
outputs = predict(load_model(MODEL, schema), test.data)
labels, predicted = test.labels, outputs.argmax(axis=1)
figures = (skm.log_loss(labels, outputs), skm.confusion_matrix(labels, predicted),
           skm.precision_recall_fscore_support(labels, predicted), skm.roc_curve(labels == 1, outputs[:, 1]),
           skm.roc_auc_score(labels == 1, outputs[:, 1]), skm.average_precision_score(labels == 1, outputs[:, 1]))
for name, values in test.features.items():
    if values.dtype == object:
        which = np.unique(values, return_inverse=True)[1]
    else:
        which = np.searchsorted(np.quantile(values, [0.25, 0.5, 0.75]), values)
    for group in np.unique(which):
        mask = which == group
        if 0 < labels[mask].sum() < mask.sum():
            skm.roc_auc_score(labels[mask] == 1, outputs[mask, 1])
            skm.log_loss(labels[mask], outputs[mask], labels=[0, 1])
rows = len(labels)
"""

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import tensorflow as tf
MODEL, EXAMPLES, OUT, HOME, BATCH, ENGINE = {model!r}, {examples!r}, {out!r}, {home!r}, {batch}, {engine!r}
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(rows, seconds, peak)
"""


def measured(body: str, tmp: Path, model_dir: str, examples_dir: str, batch: int, engine: str = "local") -> dict:
    """rows/s (TensorFlow's import left out) and peak RSS (MiB) of a fresh process running `body`."""
    out = tmp / f"out-{time.monotonic_ns()}"
    code = CHILD.format(root=str(ROOT), model=model_dir, examples=examples_dir, out=str(out), home=str(tmp / "home"),
                        batch=batch, engine=engine, body=body)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"the measured process failed:\n{done.stderr[-3000:]}")
    rows, seconds, rss = done.stdout.strip().splitlines()[-1].split()
    return {"rows": int(rows), "seconds": round(float(seconds), 1), "rows_per_s": round(int(rows) / float(seconds)),
            "peak_rss_mib": round(int(rss) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="test rows of the small split")
    parser.add_argument("--scale", type=int, default=10, help="the large split has this many times more")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--no-beam", action="store_true", help="leave out the beam engine's run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as tmp:
        tmp = Path(tmp)
        small = examples(tmp, args.rows, seed=0)
        large = examples(tmp, args.rows * args.scale, seed=1)
        trained = model(tmp, small)
        runs = {"small": measured(STREAMING, tmp, trained, small, args.batch_size),
                "large": measured(STREAMING, tmp, trained, large, args.batch_size),
                "in_memory_small": measured(IN_MEMORY, tmp, trained, small, args.batch_size)}
        if not args.no_beam:
            runs["beam_small"] = measured(STREAMING, tmp, trained, small, args.batch_size, engine="beam")
    small, before = runs["small"], runs["in_memory_small"]
    growth = runs["large"]["peak_rss_mib"] / small["peak_rss_mib"]
    report = {**runs, "rss_large_over_small": round(growth, 2),
              "rows_per_s_over_in_memory": round(small["rows_per_s"] / before["rows_per_s"], 2),
              "rss_over_in_memory": round(small["peak_rss_mib"] / before["peak_rss_mib"], 2)}
    verdict = "met" if growth <= RSS_TARGET else "NOT met"
    print(f"target (large split's peak RSS <= {RSS_TARGET}x the small one's): {verdict}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
