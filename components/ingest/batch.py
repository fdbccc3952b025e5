"""One batch of raw rows through the data logic: typed, split, serialized. Both engines call `process`.

The local engine calls it from its threads, the Beam engine from a DoFn, so
a row is typed, rejected, assigned a split and encoded the same way whichever
runs. What a batch needs to know is fixed before the first one, from the
sample, and travels with it as a `Plan` (Beam pickles it to its workers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from components.common.config import IngestConfig, SplitRatios
from components.ingest import conform, examples, split
from components.ingest.sources import RawBatch
from components.ingest.stats import Statistics


@dataclass(frozen=True)
class Plan:
    types: dict[str, str]  # every column read
    kept: dict[str, str]  # the columns written, in order
    label: str
    key: str
    ratios: SplitRatios
    max_text_bytes: int = IngestConfig.max_text_bytes
    list_delimiter: str = IngestConfig.list_delimiter

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(n for n in self.types if n not in self.kept)


@dataclass
class Processed:
    typed: conform.Typed
    splits: np.ndarray  # index into split.SPLITS of each good row
    records: np.ndarray  # serialized tf.train.Example of each good row

    def split_records(self, index: int) -> np.ndarray:
        return self.records[self.splits == index]

    def rejected_lines(self) -> str:
        """The rejected rows as rejected.jsonl holds them, one JSON object a line."""
        return "".join(json.dumps(row) + "\n" for row in self.typed.rejected)


@dataclass(frozen=True)
class Written:
    """What an engine hands back: the statistics of the rows it wrote, how many it rejected, the job that ran."""

    stats: Statistics
    rejected: int
    job_id: str = ""  # a Dataflow job's id and console page
    job_url: str = ""


def typed(batch: RawBatch, plan: Plan) -> conform.Typed:
    return conform.conform(batch, plan.types, plan.label, plan.key, plan.dropped, plan.max_text_bytes,
                           plan.list_delimiter)


def process(batch: RawBatch, plan: Plan) -> Processed:
    rows = typed(batch, plan)
    return Processed(rows, split.assign(rows.keys, plan.ratios), examples.serialize(rows.table, plan.kept))
