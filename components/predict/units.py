"""A unit of scoring work, the same for both engines: its rows read, scored and written as its own files.

A unit is examples shards (the local engine's: all of them; the Beam
engine's: one each), or a source (the local engine reads it whole) or a part
of one (the Beam engine's: ingest's own units, a file's every
k-th batch or a BigQuery read stream, `components.ingest.beam_engine.units`).
`score` writes the unit's Parquet files, its rejected rows and a small
record of what it did (`_unit-<n>.json`), which the step adds up once every
unit is done, whichever engine ran them.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from components.common import io
from components.common.config import IngestConfig
from components.predict import inputs, output
from components.predict.model import Scorer

if TYPE_CHECKING:
    from components.ingest import sources


@dataclass(frozen=True)
class Unit:
    index: int
    examples_files: tuple[str, ...] = ()  # examples shards
    source: sources.Source | None = None  # a source read whole
    part: Any = None  # a part of a source: components.ingest.beam_engine.Unit

    def rows(self, plan: inputs.Plan, typing: inputs.SourcePlan | None, ingest: IngestConfig,
             batch_size: int) -> Iterator[inputs.Rows]:
        if self.examples_files:
            return inputs.examples_rows(self.examples_files, plan, batch_size)
        from components.ingest import sources

        raw = self.part.batches(ingest) if self.part is not None else sources.read(self.source, ingest)
        return inputs.source_rows(raw, typing)

    def read_ahead(self, ingest: IngestConfig, batch_size: int) -> int:
        """How many batches are read ahead of scoring: as many as make one batch of a source (`ingest.batch_rows`),
        the memory reading a source takes anyway, so that while the model loads the examples' first batches are
        read."""
        return max(1, ingest.batch_rows // batch_size) if self.examples_files else 1


@dataclass(frozen=True)
class Done:
    """What one unit wrote."""

    rows: int
    rejected: int
    files: tuple[str, ...]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, plain: dict) -> Done:
        return cls(int(plain["rows"]), int(plain["rejected"]), tuple(plain["files"]))


def done_path(folder: str, unit: int) -> str:
    return f"{folder}/_unit-{unit:05d}.json"


@dataclass(frozen=True)
class Job:
    """Everything a unit needs besides the model (pickled to Beam's workers)."""

    folder: str  # where the unit's files go
    plan: inputs.Plan
    typing: inputs.SourcePlan | None
    ingest: IngestConfig
    schema: pa.Schema  # of the predictions files: the columns beside, then the model's
    batch_size: int
    rows_per_file: int


def score(unit: Unit, job: Job, scorer: Scorer) -> Done:
    """Scores the unit's rows `job.batch_size` at a time into its Parquet files; its rejected rows beside them.

    Three stages, each on a thread of its own and ahead of the next: reading (inflating and framing records,
    or typing a source), scoring (the model loaded first, while reading begins), and writing (Arrow columns,
    Parquet). TensorFlow and Arrow (inflating, Parquet) let go of the GIL while they work, so the stages share
    the machine's cores."""
    writer = output.PartWriter(job.folder, unit.index, job.schema, job.rows_per_file)
    rows = rejected = 0
    with io.open_write(output.rejected_part(job.folder, unit.index)) as bad, \
            contextlib.closing(unit.rows(job.plan, job.typing, job.ingest, job.batch_size)) as batches, \
            contextlib.closing(Ahead(batches, unit.read_ahead(job.ingest, job.batch_size))) as read, \
            contextlib.closing(Ahead(_scored(read, scorer, job.batch_size))) as scored:
        bad.write("")
        try:
            for piece in scored:
                bad.write("".join(json.dumps(row) + "\n" for row in piece.rejected))
                rejected += len(piece.rejected)
                if piece.outputs is not None:
                    predictions = scorer.table(piece.outputs)
                    writer.write(pa.Table.from_arrays([*piece.beside.columns, *predictions.columns],
                                                      schema=job.schema))
                    rows += predictions.num_rows
        finally:
            writer.close()
    done = Done(rows, rejected, tuple(writer.files))
    io.write_json(done_path(job.folder, unit.index), done.to_json())
    return done


@dataclass(frozen=True)
class Scored:
    """Up to `batch_size` rows of a batch with the model's outputs for them, on their way to the writer."""

    beside: pa.Table
    outputs: dict | None  # the signature's tensors; None for a batch whose every row was rejected
    rejected: list[dict]  # the batch's rejected rows, with its first piece


def _scored(batches: Iterator[inputs.Rows], scorer: Scorer, size: int) -> Iterator[Scored]:
    scorer.load()  # while the first batches are read
    for batch in batches:
        rows = len(batch.serialized)
        for start in range(0, max(rows, 1), size):
            outputs = scorer.outputs(batch.serialized[start:start + size]) if rows else None
            yield Scored(batch.beside.slice(start, size), outputs, batch.rejected if start == 0 else [])


class Ahead(Iterator[Any]):
    """`items`, made on a thread of its own from the moment this is made, up to `depth` ahead of the one in use;
    memory stays `depth` items more."""

    def __init__(self, items: Iterator[Any], depth: int = 1):
        self._items = items
        self._pool = ThreadPoolExecutor(1)
        self._pending = deque(self._pool.submit(next, items, None) for _ in range(depth))

    def __next__(self) -> Any:
        item = self._pending.popleft().result() if self._pending else None
        if item is None:
            self.close()
            raise StopIteration
        self._pending.append(self._pool.submit(next, self._items, None))
        return item

    def close(self) -> None:
        """Stops reading ahead: what is not begun is dropped, what is begun is finished."""
        while self._pending:
            self._pending.pop().cancel()
        self._pool.shutdown()
