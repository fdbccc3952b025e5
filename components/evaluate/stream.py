"""Reading the test split a batch at a time, and the local engine: one process folds the batches into a state.

A pass over the split reads, per batch, the label, each model's outputs and
the values of the features slices group by (a `Batch`), and hands it to the
pass's accumulator (`add`), which keeps a size set by the task and the
slices, never by the number of rows. The records are parsed a batch at a
time and never cached, so memory does not grow with the split. The beam
engine (`components.evaluate.beam_engine`) runs the same `Reader` and
accumulators as a Beam pipeline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import keras
import numpy as np
import tensorflow as tf

from components.common import reader as reader_lib
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import Task


@dataclass(frozen=True)
class Batch:
    labels: np.ndarray  # class indices, or values
    outputs: tuple[np.ndarray, ...]  # per model read: probabilities (rows), or predicted values
    columns: dict[str, np.ndarray]  # the sliced features' values, one per row


class State(Protocol):
    def add(self, batch: Batch) -> None: ...

    def merge(self, other): ...


S = TypeVar("S", bound=State)


@dataclass(frozen=True)
class Reader:
    """What one pass reads of the test split: the sliced features and, when it names any, the models' outputs."""

    examples: str
    schema: Schema
    task: Task
    columns: tuple[str, ...]
    models: tuple[tuple[str, str], ...] = ()  # (path, what it is, for errors): the evaluated model, then a baseline

    def parsed(self) -> Schema:
        """The features a batch is parsed into: every input when models are read, else just the sliced ones."""
        if self.models:
            return self.schema
        kept = {*self.columns, self.schema.label}
        return dataclasses.replace(self.schema, features=tuple(f for f in self.schema.features if f.name in kept))

    def opened(self, models: list[keras.Model] | None = None) -> Callable[[dict, tf.Tensor], Batch]:
        """The function from a parsed batch to its `Batch`; loads the models unless given them loaded."""
        if models is None:
            models = [load_model(path, self.schema, what) for path, what in self.models]
        forwards = [forward(m) for m in models]
        regression = self.task.kind == "regression"

        def batch(x: dict, y: tf.Tensor) -> Batch:
            outputs = tuple(f(x) for f in forwards)
            return Batch(y.numpy(), tuple(o.reshape(-1) if regression else o for o in outputs),
                         {c: x[c].numpy().reshape(-1) for c in self.columns})

        return batch


def forward(model: keras.Model) -> Callable[[dict], np.ndarray]:
    """The model's outputs for a batch of parsed features; a Sequential model gets its one input tensor."""
    single = isinstance(model, keras.Sequential)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: call(next(iter(x.values())) if single else x).numpy()


def combine(reader: Reader, empty: Callable[[], S], batch_size: int, models: list[keras.Model]) -> S:
    """The local engine: every batch of the test split added to one state, in this process."""
    files = reader_lib.files_of(reader.examples, "test")
    data = (tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=min(len(files), 4))
            .batch(batch_size)
            .map(reader_lib.parser(reader.parsed(), reader.task, single_input=False),
                 num_parallel_calls=reader_lib.AUTOTUNE)
            .prefetch(reader_lib.AUTOTUNE))
    state, batch_of = empty(), reader.opened(models)
    for x, y in data:
        state.add(batch_of(x, y))
    return state
