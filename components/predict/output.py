"""Where predictions go: Parquet files in a folder, or a BigQuery table loaded from them.

Each unit of work (the local engine's one, or a Beam worker's file or
stream) writes its own `part-<unit>-<n>.parquet` files, a file closed once
it holds `predict.rows_per_file` rows, and its own rejected rows. All of it
is written inside the step's staging folder (`io.staged_dir`), which takes
the output's name only once every file is whole; names starting with `_`
(`_rejected.jsonl`, `_predict.json`) are what Parquet readers (Arrow, Spark,
BigQuery external tables) skip, so the folder reads as one table.

A `bq://project.dataset.table` destination is loaded from those files by one
BigQuery load job (Parquet, the table replaced: `WRITE_TRUNCATE`), so the
table changes whole or not at all; files staged on gs:// (Dataflow) are
loaded by their URIs, local ones uploaded with the job. A load job rather
than the Storage Write API: the files are already written in the format a
load reads, and one job replaces the table atomically where appended streams
would need their own commit bookkeeping.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from components.common import io
from components.common.errors import TfpipeError

BIGQUERY = "bq://"
REJECTED = "_rejected.jsonl"


class OutputError(TfpipeError):
    """A destination that cannot be written: a bad table name, a failed load job."""


def part_name(unit: int, index: int) -> str:
    return f"part-{unit:05d}-{index:03d}.parquet"


def rejected_part(folder: str, unit: int) -> str:
    return f"{folder}/_rejected-{unit:05d}.jsonl"


class PartWriter:
    """One unit's Parquet files: `part-<unit>-<n>.parquet`, the next begun when one holds `rows_per_file` rows."""

    def __init__(self, folder: str, unit: int, schema: pa.Schema, rows_per_file: int):
        self.folder, self.unit, self.schema, self.rows_per_file = folder, unit, schema, rows_per_file
        self.files: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._open()
            room = self.rows_per_file - self._rows
            self._writer.write_table(table.slice(0, room))
            self._rows += min(room, table.num_rows)
            table = table.slice(room)
            if self._rows >= self.rows_per_file:
                self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def _open(self) -> None:
        path = f"{self.folder}/{part_name(self.unit, len(self.files))}"
        self._sink = io.open_write_binary(path)
        self._writer = pq.ParquetWriter(self._sink, self.schema, use_dictionary=_repeating(self.schema))
        self.files.append(path)
        self._rows = 0


def _repeating(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary: text (class names, file names, categories) repeats; numbers, such as
    probabilities and line numbers, seldom do, and encoding them twice to find that out costs more than writing
    them (at 1,000,000 rows, half the writer's time, and the files came out 40% larger)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def empty_part(folder: str, schema: pa.Schema) -> str:
    """A file of no rows, so that a run that scored nothing still reads back as a table with its columns."""
    writer = PartWriter(folder, 0, schema, 1)
    writer._open()
    writer.close()
    return writer.files[0]


def gather_rejected(folder: str, units: int) -> None:
    """The units' rejected rows, in unit order, as one `_rejected.jsonl`; the parts removed."""
    g = io.gfile()
    with io.open_write(f"{folder}/{REJECTED}") as out:
        out.write("")
        for unit in range(units):
            part = rejected_part(folder, unit)
            if g.exists(part):
                with g.GFile(part) as f:
                    while chunk := f.read(1 << 24):
                        out.write(chunk)
                g.remove(part)


@dataclass(frozen=True)
class Destination:
    """A BigQuery table to load the predictions into."""

    project: str
    dataset: str
    table: str

    @classmethod
    def parse(cls, uri: str) -> Destination:
        parts = uri.removeprefix(BIGQUERY).rsplit(".", 2)  # a domain-scoped project (example.com:p) holds a dot
        if len(parts) != 3 or not all(parts) or "$" in uri:
            raise OutputError(f"--out: expected a folder or bq://project.dataset.table, got {uri!r}")
        return cls(*parts)

    @property
    def id(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def is_bigquery(out: str) -> bool:
    return out.startswith(BIGQUERY)


def load(destination: Destination, files: list[str]) -> str:
    """Replaces the table with the Parquet `files` in one load job; returns the job's id."""
    from google.cloud import bigquery

    from components.ingest import bigquery as bigquery_source

    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                                    create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED)
    parquet = bigquery.ParquetOptions()
    parquet.enable_list_inference = True  # probabilities: a REPEATED FLOAT, not a record of items
    config.parquet_options = parquet
    with bigquery_source._api(f"loading {len(files)} Parquet file(s) into {destination.id}"):
        client = bigquery.Client(project=destination.project, credentials=_credentials())
        if all(f.startswith("gs://") for f in files):
            job = client.load_table_from_uri(files, destination.id, job_config=config)
        else:
            with _concatenated(files) as parquet:
                job = client.load_table_from_file(parquet, destination.id, job_config=config, rewind=True)
        job.result()
    return job.job_id


@contextlib.contextmanager
def _concatenated(files: list[str]):
    """One local Parquet file of every part, row group by row group (a load job of a local file takes one)."""
    if len(files) == 1:
        with open(files[0], "rb") as f:
            yield f
        return
    path = f"{os.path.dirname(files[0])}/_all.parquet"
    schema = pq.read_schema(files[0])
    with pq.ParquetWriter(path, schema) as writer:
        for part in files:
            with pq.ParquetFile(part) as parquet:
                for group in range(parquet.num_row_groups):
                    writer.write_table(parquet.read_row_group(group))
    try:
        with open(path, "rb") as f:
            yield f
    finally:
        os.remove(path)


def _credentials():
    """Anonymous against a BigQuery emulator (BIGQUERY_EMULATOR_HOST, which the client then calls); else the
    Application Default Credentials."""
    if not os.environ.get("BIGQUERY_EMULATOR_HOST"):
        return None
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()

