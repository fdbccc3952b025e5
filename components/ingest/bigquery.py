"""BigQuery tables and query results as an ingest source, read through the BigQuery Storage Read API.

    bq://project.dataset.table                   a table
    bq://project.dataset.table$20261101          one day's partition; ${YYYY}{MM}{DD}: ingest.source_date, else
                                                 the newest day with rows
    ingest.query: SELECT ... '{YYYY}-{MM}-{DD}'  a query's result; the date: ingest.source_date, else today (UTC)

The table's schema (BigQuery's REST API) decides what is read and what each
column becomes. A read session then streams Arrow record batches over up to
`ingest.threads` streams, holding only the columns the run keeps (those in
`ingest.drop` stay in BigQuery) and the rows that the partition and
`ingest.bigquery.row_restriction` let through. A query runs into BigQuery's
temporary result table, which is read the same way.

Each type arrives as an Arrow type that `conform` takes as it is instead of
guessing from the values: INT64, and BOOL as 0/1, as int64; FLOAT64, NUMERIC
and BIGNUMERIC as float64 (stored as float32 like every float, so a value
beyond float32 rejects its row, as any number that does not fit does); STRING
and BYTES as bytes, a string feature even when the values look like numbers;
DATE, DATETIME, TIMESTAMP and TIME as ISO 8601 text, or as int64 seconds (since
the epoch, TIME since midnight) with `ingest.bigquery.timestamps: seconds`. A
REPEATED column of one of these is a list feature of them (an ARRAY arrives as
an Arrow list). A STRUCT, GEOGRAPHY, JSON, INTERVAL or RANGE column is an
error that names it and the way out.

A set `ingest.bigquery.endpoint` is an emulator or stand-in: plain-text gRPC and
no credentials; the REST API then goes where google-cloud-bigquery sends it
(its BIGQUERY_EMULATOR_HOST).
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.common.config import BigQueryOptions, IngestConfig
from components.common.errors import TfpipeError
from components.common.templates import is_templated
from components.ingest import spans
from components.ingest.raw import RawBatch, Source, relisted

SCHEME = "bq://"
FORMAT = "bigquery"
DAY_TEMPLATE = "{YYYY}{MM}{DD}"
# The Arrow type the Storage Read API sends for each type that ingest reads.
ARROW_TYPES = {
    "INT64": pa.int64(), "FLOAT64": pa.float64(), "BOOL": pa.bool_(),
    "NUMERIC": pa.decimal128(38, 9), "BIGNUMERIC": pa.decimal256(76, 38),
    "STRING": pa.string(), "BYTES": pa.binary(),
    "DATE": pa.date32(), "DATETIME": pa.timestamp("us"), "TIMESTAMP": pa.timestamp("us", "UTC"),
    "TIME": pa.time64("us"),
}
LEGACY_NAMES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}
# How a query turns a column of each unsupported type into one value a feature holds.
CONVERSIONS = {"GEOGRAPHY": "ST_ASTEXT({0})", "JSON": "TO_JSON_STRING({0})", "STRUCT": "{0}.field",
               "RANGE": "RANGE_START({0})", "INTERVAL": "CAST({0} AS STRING)"}
# DATETIME and TIMESTAMP as text: ISO 8601 with microseconds.
TEXT_FORMATS = {"DATETIME": "%Y-%m-%dT%H:%M:%S", "TIMESTAMP": "%Y-%m-%dT%H:%M:%SZ"}
class BigQueryError(TfpipeError):
    """A BigQuery source that cannot be read: a bad table name, an unsupported column, a failed request."""


@dataclass(frozen=True)
class Table:
    project: str
    dataset: str
    name: str
    # A $ partition decorator's value: YYYYMMDD.
    partition: str = ""

    @classmethod
    def parse(cls, uri: str) -> Table:
        body, _, partition = uri.removeprefix(SCHEME).partition("$")
        parts = body.rsplit(".", 2)  # a domain-scoped project (example.com:p) holds a dot
        if not uri.startswith(SCHEME) or len(parts) != 3 or not all(parts):
            raise BigQueryError(f"ingest.source: expected bq://project.dataset.table[$YYYYMMDD], got {uri!r}")
        return cls(*parts, partition)

    @property
    def uri(self) -> str:
        return SCHEME + self.id + (f"${self.partition}" if self.partition else "")

    @property
    def id(self) -> str:
        """The table as BigQuery's REST API and SQL name it."""
        return f"{self.project}.{self.dataset}.{self.name}"

    @property
    def path(self) -> str:
        """The table as the Storage Read API names it."""
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{self.name}"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the GoogleSQL name: INT64, not INTEGER
    mode: str = "NULLABLE"

    @classmethod
    def of(cls, field) -> Column:
        """A schema field of google-cloud-bigquery (SchemaField) or of Beam (TableFieldSchema)."""
        kind = (getattr(field, "field_type", None) or field.type).upper()
        return cls(field.name, LEGACY_NAMES.get(kind, kind), (field.mode or "NULLABLE").upper())


def is_source(cfg: IngestConfig) -> bool:
    return bool(cfg.query) or cfg.source.startswith(SCHEME)


def resolve(cfg: IngestConfig) -> Source:
    """The table to read: the source's, its date filled in, or the result of `ingest.query`, which runs now."""
    opts = cfg.bigquery
    if cfg.query:
        if cfg.source:
            raise BigQueryError(f"ingest.query reads a query's result instead of ingest.source ({cfg.source!r}); "
                                "set one of them")
        if opts.snapshot_time:
            raise BigQueryError("ingest.bigquery.snapshot_time reads a table as it was; in ingest.query, write "
                                "FOR SYSTEM_TIME AS OF after the table instead")
        if not opts.project:
            raise BigQueryError("ingest.bigquery.project: a query needs the project that runs (and pays for) it")
        day = cfg.source_date or datetime.datetime.now(datetime.UTC).date().isoformat()
        sql = spans.resolve(cfg.query, day)
        return Source(FORMAT, (_run_query(sql, opts).uri,), path=sql)
    table = Table.parse(cfg.source)
    if is_templated(cfg.source):
        table = _dated(table, cfg)
    return Source(FORMAT, (table.uri,), path=table.uri)


def _dated(template: Table, cfg: IngestConfig) -> Table:
    if cfg.source_date:
        return Table.parse(spans.resolve(template.uri, cfg.source_date))
    if template.partition != DAY_TEMPLATE or is_templated(replace(template, partition="").uri):
        raise BigQueryError(f"ingest.source {cfg.source!r}: the newest day is looked up for a partition "
                            f"(bq://project.dataset.table${DAY_TEMPLATE}) only; set ingest.source_date")
    return replace(template, partition=_newest_partition(template, cfg.bigquery))


def _newest_partition(table: Table, opts: BigQueryOptions) -> str:
    from google.cloud import bigquery

    sql = (f"SELECT MAX(partition_id) AS newest FROM `{table.project}.{table.dataset}.INFORMATION_SCHEMA.PARTITIONS` "
           r"WHERE table_name = @table AND total_rows > 0 AND REGEXP_CONTAINS(partition_id, r'^[0-9]{8}$')")
    config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("table", "STRING", table.name)])
    with _api(f"{table.uri}: listing its partitions"):
        rows = list(_rest(opts, opts.project or table.project).query_and_wait(sql, job_config=config))
    newest = rows[0]["newest"] if rows else None
    if not newest:
        raise spans.SpanError(f"ingest.source {table.uri}: no day partition of {table.id} holds rows")
    return newest


def _run_query(sql: str, opts: BigQueryOptions) -> Table:
    with _api("ingest.query"):
        job = _rest(opts, opts.project).query(sql)
        job.result(max_results=0)
    result = job.destination
    if result is None:
        raise BigQueryError("ingest.query: the query wrote no result table (a script, or a DDL or DML statement); "
                            "expected one SELECT")
    return Table(result.project, result.dataset_id, result.table_id)


@dataclass(frozen=True)
class Session:
    """A read session, as plain values: it crosses to Beam's workers, each of which reads some of its streams."""

    table: str  # the bq:// URI, for messages
    streams: tuple[str, ...]
    arrow_schema: bytes  # serialized
    kept: tuple[Column, ...]
    dropped: tuple[str, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.ipc.read_schema(pa.py_buffer(self.arrow_schema))


def session(source: Source, cfg: IngestConfig, streams: int) -> Session:
    """A read session of the source's table with at most `streams` streams: the kept columns, the partition
    and `ingest.bigquery.row_restriction`, the snapshot time."""
    from google.cloud.bigquery_storage_v1 import types

    opts = cfg.bigquery
    table = Table.parse(source.files[0])
    billing = opts.project or table.project
    with _api(f"{table.uri}: reading its schema"):
        meta = _rest(opts, billing).get_table(table.id)
    columns = [Column.of(f) for f in meta.schema]
    kept, dropped = _projection(columns, cfg, table.uri)
    restriction = " AND ".join(f"({r})" for r in (_partition_filter(table, meta, columns), opts.row_restriction) if r)
    request = types.ReadSession(
        table=table.path,
        data_format=types.DataFormat.ARROW,
        read_options=types.ReadSession.TableReadOptions(selected_fields=[c.name for c in kept],
                                                        row_restriction=restriction),
        table_modifiers=types.ReadSession.TableModifiers(snapshot_time=_snapshot(opts.snapshot_time)),
    )
    with _api(f"{table.uri}: creating a read session"):
        made = _storage(opts).create_read_session(parent=f"projects/{billing}", read_session=request,
                                                  max_stream_count=streams)
    return Session(table.uri, tuple(stream.name for stream in made.streams),
                   bytes(made.arrow_schema.serialized_schema), tuple(kept), tuple(dropped))


def read(source: Source, cfg: IngestConfig) -> Iterator[RawBatch]:
    """The rows of every stream of one read session, `ingest.batch_rows` at a time, numbered across the read."""
    opened = session(source, cfg, cfg.threads)
    storage = _storage(cfg.bigquery)
    seen = 0
    with _api(f"{opened.table}: reading its streams"):
        for index, rows in _together([storage.read_rows(name) for name in opened.streams], opened.schema, cfg):
            lines = np.arange(seen + 1, seen + 1 + rows.num_rows, dtype=np.int64)
            seen += rows.num_rows
            yield RawBatch(opened.streams[index], lines,
                           _raw_table(rows, opened.kept, opened.dropped, cfg.bigquery.timestamps))


def read_stream(opened: Session, stream: str, cfg: IngestConfig) -> Iterator[RawBatch]:
    """One stream's rows, `ingest.batch_rows` at a time, numbered within the stream (the Beam engine's unit)."""
    seen = 0
    with _api(f"{opened.table}: reading stream {stream}"):
        messages = _storage(cfg.bigquery).read_rows(stream)
        try:
            for rows in _rebatched(messages, opened.schema, cfg.batch_rows):
                lines = np.arange(seen + 1, seen + 1 + rows.num_rows, dtype=np.int64)
                seen += rows.num_rows
                yield RawBatch(stream, lines, _raw_table(rows, opened.kept, opened.dropped, cfg.bigquery.timestamps))
        finally:
            messages.cancel()


def _projection(columns: list[Column], cfg: IngestConfig, where: str) -> tuple[list[Column], list[str]]:
    """The columns to read, checked, and the names of those left in BigQuery.

    The split key is read even when dropped, as the step splits by it.
    """
    names = [c.name for c in columns]
    missing = [n for n in cfg.drop if n not in names]
    if missing:
        raise BigQueryError(f"ingest.drop: column(s) {missing} not in {where}; columns are {names}")
    left = set(cfg.drop) - {cfg.key}
    kept = [c for c in columns if c.name not in left]
    for column in kept:
        _check(column, where)
    return kept, [n for n in names if n in left]


def _check(column: Column, where: str) -> None:
    if column.type not in ARROW_TYPES:
        how = CONVERSIONS.get(column.type, "CAST({0} AS STRING)").format(column.name)
        repeated = "REPEATED " if column.mode == "REPEATED" else ""
        raise BigQueryError(
            f"{where}: column {column.name!r} is {repeated}{column.type}; ingest reads {', '.join(ARROW_TYPES)} "
            f"(and arrays of them); add it to ingest.drop, or convert it in ingest.query (e.g. {how})")


def _partition_filter(table: Table, meta, columns: list[Column]) -> str:
    """A $YYYYMMDD decorator as a row restriction, since the Storage Read API takes no decorators."""
    if not table.partition:
        return ""
    day = None
    if len(table.partition) == 8 and table.partition.isdigit():
        with contextlib.suppress(ValueError):
            day = datetime.date.fromisoformat(table.partition)
    if day is None:
        raise BigQueryError(f"ingest.source {table.uri}: expected a day partition $YYYYMMDD, "
                            f"got ${table.partition}")
    partitioning = meta.time_partitioning
    if partitioning is None or partitioning.type_ != "DAY":
        kind = "not partitioned by time" if partitioning is None else f"partitioned by {partitioning.type_}"
        raise BigQueryError(f"ingest.source {table.uri}: ${table.partition} names a day's partition, but the table "
                            f"is {kind}")
    field = partitioning.field
    if not field:
        return f"_PARTITIONDATE = DATE '{day}'"
    kind = next(c.type for c in columns if c.name == field)
    if kind == "DATE":
        return f"`{field}` = DATE '{day}'"
    return f"`{field}` >= {kind} '{day}' AND `{field}` < {kind} '{day + datetime.timedelta(days=1)}'"


def _snapshot(text: str) -> datetime.datetime | None:
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BigQueryError(f"ingest.bigquery.snapshot_time: expected an RFC 3339 time with its zone, e.g. "
                            f"2026-11-01T12:00:00Z, got {text!r}")
    return moment


def _together(streams: list, schema: pa.Schema, cfg: IngestConfig) -> Iterator[tuple[int, pa.Table]]:
    """(stream index, rows) from every stream at once, each read on a thread of its own.

    At most `ingest.threads` tables wait to be taken. Closing the generator
    cancels the streams still open, which ends their threads.
    """
    waiting: queue.Queue = queue.Queue(cfg.threads)
    stop = threading.Event()

    def offer(item: tuple) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                waiting.put(item, timeout=0.1)
                return

    def drain(index: int) -> None:
        try:
            for rows in _rebatched(streams[index], schema, cfg.batch_rows):
                offer((index, rows, None))
            offer((index, None, None))
        except Exception as e:  # noqa: BLE001 - the reader raises it
            offer((index, None, e))

    threads = [threading.Thread(target=drain, args=(i,), name=f"bigquery-stream-{i}", daemon=True)
               for i in range(len(streams))]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < len(streams):
            index, rows, error = waiting.get()
            if error is not None:
                raise error
            if rows is None:
                finished += 1
            else:
                yield index, rows
    finally:
        stop.set()
        for stream in streams:
            stream.cancel()
        for thread in threads:
            thread.join()


def _rebatched(messages, schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    """The record batches of a stream's responses (each up to 10 MiB), gathered into tables of about `rows` rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for message in messages:
        batch = pa.ipc.read_record_batch(pa.py_buffer(message.arrow_record_batch.serialized_record_batch), schema)
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending, schema)
            pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending, schema)


def _raw_table(table: pa.Table, columns: Sequence[Column], dropped: Sequence[str], timestamps: str) -> pa.Table:
    """Each column as conform takes it as typed; a dropped column as nulls, so that the step finds what it drops."""
    arrays = {c.name: _raw_list(table.column(c.name), c.type, timestamps) if c.mode == "REPEATED"
              else _raw_column(table.column(c.name), c.type, timestamps) for c in columns}
    arrays.update({name: pa.nulls(table.num_rows) for name in dropped})
    return pa.table(arrays)


def _raw_list(values: pa.ChunkedArray, kind: str, timestamps: str) -> pa.Array:
    """An ARRAY column: its values as `_raw_column` makes a column of `kind`, in the same lists."""
    lists = values.combine_chunks()
    return relisted(lists, _raw_column(pc.list_flatten(lists), kind, timestamps))


def _raw_column(values: pa.ChunkedArray, kind: str, timestamps: str) -> pa.ChunkedArray:
    if kind in ("INT64", "BOOL"):
        return pc.cast(values, pa.int64())
    if kind in ("FLOAT64", "NUMERIC", "BIGNUMERIC"):
        return pc.cast(values, pa.float64())
    if kind in ("STRING", "BYTES"):
        # Not string or binary, which conform reads as text to be typed: a typed column keeps its type.
        return pc.cast(values, pa.large_binary())
    if timestamps == "seconds":
        whole = pc.cast(values, pa.time32("s") if kind == "TIME" else pa.timestamp("s"), safe=False)
        return pc.cast(pc.cast(whole, pa.int32() if kind == "TIME" else pa.int64()), pa.int64())
    text = pc.strftime(values, TEXT_FORMATS[kind]) if kind in TEXT_FORMATS else pc.cast(values, pa.string())
    return pc.cast(text, pa.large_binary())


def _rest(opts: BigQueryOptions, project: str):
    from google.cloud import bigquery

    return bigquery.Client(project=project, credentials=_anonymous() if opts.endpoint else None)


def _storage(opts: BigQueryOptions):
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    if not opts.endpoint:
        return BigQueryReadClient()
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=grpc.insecure_channel(opts.endpoint)))


def _anonymous():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


@contextlib.contextmanager
def _api(what: str):
    """Google's errors (a failed request, no credentials) as one line that says what was being done."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except GoogleAPIError as e:
        raise BigQueryError(f"{what}: {getattr(e, 'message', None) or e}") from None
    except GoogleAuthError as e:
        raise BigQueryError(f"{what}: no Google credentials ({e}); run `gcloud auth application-default login` "
                            "or set GOOGLE_APPLICATION_CREDENTIALS") from None
