"""What is scored, a batch at a time: examples an ingest step wrote, or a source read and typed as ingest does.

Both become `Rows`: serialized `tf.train.Example`s for the model and, row
for row, the columns that go beside each prediction (the key, or the file and
line a row came from, and the `predict.keep` columns). A source is read by
ingest's readers (`components.ingest.sources`) and typed by ingest's
`conform` with the types of the schema the model was trained on; a row
ingest would reject for a bad value of a column read here is reported as
ingest reports it (file, line, column, value) and never scored. The label
is not needed to score: rows without one are scored, and a label column is
read only when `predict.keep` asks for it.

Nothing is held beyond the batch being scored: a source's reader yields
batches of `ingest.batch_rows`, and examples files are read a batch at a
time.

Ingest's modules are imported only where a source is read (here, and in
the step and its units): scoring examples does without them, and without
the twentieth of a second importing them takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from components.common.config import IngestConfig
from components.common.errors import TfpipeError
from components.common.schema import Schema, with_lists
from components.predict import records

if TYPE_CHECKING:
    from components.ingest.sources import RawBatch

FILE, LINE = "file", "line"  # where a row came from, when the schema has no key
# conform rejects a row without a label; scoring needs none, so it is given this always-present one.
_PRESENT = "__tfpipe_predict_present"
ARROW = with_lists({"int": pa.int64(), "float": pa.float32(), "string": pa.string(), "text": pa.string(),
                    "image": pa.binary()}, pa.list_)


class InputError(TfpipeError):
    """The data lacks a column the model or `predict.keep` needs."""


@dataclass(frozen=True)
class Rows:
    """One batch to score."""

    serialized: Any  # tf.train.Example bytes, one per row: a tf.string tensor, or the encoder's numpy array
    beside: pa.Table  # the key (or file and line) and the kept columns, one row per example
    rejected: list[dict]  # rows typing rejected, as ingest's rejected.jsonl holds them


@dataclass(frozen=True)
class Plan:
    """What every batch needs to know, fixed before the first (Beam pickles it to its workers)."""

    schema: Schema  # the model's: its inputs and how they are typed
    keep: tuple[str, ...]
    where: str  # the examples folder or the source, for errors
    key: str  # the column a prediction is keyed by (ingest.key); "": the file and line instead
    data: Schema  # the examples' own schema (they may hold columns the model's lacks), or the model's for a source

    @property
    def identity(self) -> tuple[str, ...]:
        """The columns that say which row a prediction is of: the key, else the file and line."""
        return (self.key,) if self.key else (FILE, LINE)

    @property
    def beside(self) -> tuple[str, ...]:
        return (*self.identity, *(c for c in self.keep if c not in self.identity))

    def beside_schema(self, extra_types: dict[str, str] | None = None) -> pa.Schema:
        """The Arrow types of the columns beside the predictions; a kept column the schema lacks is text."""
        types = {f.name: f.type for f in self.data.features} | (extra_types or {})
        fields = [(FILE, pa.string()), (LINE, pa.int64())] if not self.key else []
        return pa.schema([*fields, *((c, ARROW[types.get(c, "string")]) for c in self.beside
                                     if c not in (FILE, LINE))])


# ------------------------------------------------------------------------------------------------ examples


def check_examples_plan(plan: Plan) -> None:
    """Examples hold only the schema's features: a kept column must be one of them."""
    names = [f.name for f in plan.data.features]
    missing = [c for c in plan.keep if c not in names]
    if missing:
        raise InputError(f"predict.keep: column(s) {missing} not in the examples {plan.where}; their features are "
                         f"{names}")


def examples_rows(files: tuple[str, ...], plan: Plan, batch_size: int) -> Iterator[Rows]:
    """Examples shards' records a batch at a time (components.predict.records), with the kept features parsed
    beside them."""
    import tensorflow as tf

    spec = {k: v for k, v in plan.data.parse_spec().items() if k in plan.beside}
    target = plan.beside_schema()
    for file in files:
        first = 1
        for batch in records.batches(file, batch_size):
            n = len(batch)
            serialized = tf.constant(batch, tf.string)
            columns = {FILE: pa.repeat(file, n).cast(pa.string()),
                       LINE: pa.array(np.arange(first, first + n))} if not plan.key else {}
            parsed = tf.io.parse_example(serialized, spec) if spec else {}
            columns |= {name: pa.array(value.numpy(), target.field(name).type) for name, value in parsed.items()}
            first += n
            yield Rows(serialized, pa.table({f.name: columns[f.name] for f in target}), [])


# ------------------------------------------------------------------------------------------------ a source


@dataclass(frozen=True)
class SourcePlan:
    """How a source's raw batches are typed: the schema's types for the columns read."""

    plan: Plan
    types: dict[str, str]  # every column read, as conform takes them
    inputs: dict[str, str]  # the model's inputs, as the encoder takes them
    max_text_bytes: int
    list_delimiter: str  # the ingest section's, else the one the model's training data was split with


def source_plan(plan: Plan, columns: list[str], ingest: IngestConfig) -> SourcePlan:
    """The types to read a source with columns `columns`; a model input, the key or a kept column it lacks is
    named with the columns it has."""
    schema = plan.schema
    inputs = {f.name: f.type for f in schema.inputs}  # the key too: a default model reads it as a category
    for what, names in (("the model's inputs", list(inputs)), ("ingest.key", [plan.key] if plan.key else []),
                        ("predict.keep", list(plan.keep))):
        missing = [n for n in names if n not in columns]
        if missing:
            raise InputError(f"{plan.where}: {what} {missing} not among its columns {columns}")
    known = {f.name: f.type for f in schema.features}
    kept = {name: known.get(name, "string") for name in plan.beside if name not in (FILE, LINE)}
    return SourcePlan(plan, {**inputs, **kept, _PRESENT: "string"}, inputs, ingest.max_text_bytes,
                      ingest.list_delimiter or schema.source.get("list_delimiter", ""))


def source_rows(batches: Iterator[RawBatch], typing: SourcePlan) -> Iterator[Rows]:
    """Each raw batch typed as ingest types it, encoded as ingest encodes it; rejected rows set aside."""
    import pyarrow.compute as pc

    from components.ingest import conform, examples as encoder
    from components.ingest.sources import RawBatch

    target = typing.plan.beside_schema(typing.types)
    with contextlib.closing(batches):  # the reader's files closed here, not whenever it is garbage
        for raw in batches:
            always = pa.repeat(b"", raw.table.num_rows)
            present = RawBatch(raw.file, raw.lines, raw.table.append_column(_PRESENT, always), raw.rejected)
            typed = conform.conform(present, typing.types, _PRESENT, _PRESENT, (), typing.max_text_bytes,
                                    typing.list_delimiter)
            table = typed.table
            columns = {FILE: pa.repeat(raw.file, table.num_rows), LINE: pa.array(typed.lines, pa.int64())} \
                | {name: table.column(name) for name in table.column_names}
            beside = pa.table({f.name: pc.cast(columns[f.name], f.type) for f in target})
            yield Rows(encoder.serialize(table.select(list(typing.inputs)), typing.inputs), beside,
                       [*raw.rejected, *(_without_present(r) for r in typed.rejected[len(raw.rejected):])])


def _without_present(rejected: dict) -> dict:
    """A rejected row's text as the source has it: without the always-present column's empty value at its end."""
    return {**rejected, "raw": rejected["raw"].removesuffix(",")}
