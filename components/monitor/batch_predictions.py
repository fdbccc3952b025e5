"""Batch predictions read back as scored rows, for their quality once labels arrive.

    scored = read("preds/{YYYY}-{MM}-{DD}", schema, task, sliced=("plan",), seconds=86400)

A predict step's output folder holds Parquet files (`part-*.parquet`) of
rows keyed by the training data's `ingest.key`, with each class's
probability (in the order the files' metadata records) or the predicted
value, and `_predict.json`, written when the folder was complete: its time is
the predictions' time, which places them in a window. A source with
{YYYY}-{MM}-{DD} or {SPAN} reads every span present, a window each when the
spans are further apart than the window. The sliced features are read where
the files kept them (`predict.keep`); rows scored without a key (a source
without `ingest.key`) count as predictions without one.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from components.common import io
from components.common.schema import Schema
from components.common.task import Task
from components.ingest import spans
from components.monitor.decode import Scored
from components.monitor.errors import MonitorError

SUMMARY = "_predict.json"  # what the predict step writes last, beside its files (components.predict.step)
# the predict step's names (components.predict.model, components.predict.step): its prediction columns, and the
# files' metadata that orders the probabilities by class
PROBABILITIES, PREDICTED_VALUE, CLASSES = "probabilities", "predicted_value", b"tfpipe.classes"


def read(source: str, schema: Schema, task: Task, sliced: tuple[str, ...], seconds: int
         ) -> tuple[dict[int, Scored], int]:
    """Every predictions folder of `source`, by the start of the window its time falls in; and how many files."""
    windows: dict[int, Scored] = {}
    count = 0
    for folder in spans.every(source.rstrip("/")):
        files = sorted(f for f in io.gfile().glob(f"{folder}/*.parquet") if not f.rsplit("/", 1)[-1].startswith("_"))
        if not files or not io.gfile().exists(f"{folder}/{SUMMARY}"):
            raise MonitorError(f"{folder}: no batch predictions; expected a predict step's output folder "
                               f"(part-*.parquet and {SUMMARY})")
        when = io.gfile().stat(f"{folder}/{SUMMARY}").mtime_nsec // 1_000_000_000
        into = windows.setdefault(when // seconds * seconds, Scored())
        for path in files:
            _add(path, schema, task, sliced, into)
        count += len(files)
    return windows, count


def _add(path: str, schema: Schema, task: Task, sliced: tuple[str, ...], into: Scored) -> None:
    with io.open_binary(path) as f:
        table = pq.read_table(f)
    rows = table.num_rows
    if task.kind == "classification":
        order = json.loads((table.schema.metadata or {}).get(CLASSES, b"[]"))
        if sorted(order) != sorted(task.classes):
            raise MonitorError(f"{path}: predictions of the classes {order}; the model's label has "
                               f"{list(task.classes)}: the predictions are of another model")
        probabilities = np.array(table.column(PROBABILITIES).to_pylist(), np.float64).reshape(rows, len(order))
        scores = probabilities[:, [order.index(c) for c in task.classes]]
    else:
        scores = table.column(PREDICTED_VALUE).to_numpy().astype(np.float64)
    keys = table.column(schema.key).to_pylist() if schema.key in table.column_names else [None] * rows
    into.keys.extend("" if k is None else str(k) for k in keys)
    into.scores.extend(scores)
    for name in sliced:
        into.slices.setdefault(name, []).extend(table.column(name).to_pylist() if name in table.column_names
                                                else [None] * rows)
