"""BigQuery sources end to end against stand-ins on 127.0.0.1: the Storage Read API (gRPC, Arrow) and the REST API.

google-cloud-bigquery-storage 2.43 ships no generated servicer (its GAPIC
client builds the stubs itself), so the stand-in registers the real service and
method names with the real request and response messages, and answers with
Arrow IPC record batches as BigQuery does. The REST stand-in answers what
google-cloud-bigquery asks when it reads a table's metadata and runs a query.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import json
import threading
from concurrent import futures

import grpc
import numpy as np
import pyarrow as pa
import pytest
from aiohttp import web
from google.cloud.bigquery_storage_v1 import types

from components.common.config import BeamConfig, BigQueryOptions, IngestConfig
from components.ingest import run, sources
from components.ingest.bigquery import BigQueryError
from components.ingest.spans import SpanError
from tests.components.ingest.test_lists import stored_rows
from tests.conftest import all_rows, http_server, read_examples

SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"
UTC = datetime.UTC
N = 40


def every_type() -> tuple[list[dict], pa.Table]:
    """A table of every type ingest reads: its REST schema (legacy names, as the API gives) and its rows in Arrow."""
    schema = [
        {"name": "id", "type": "INTEGER"}, {"name": "f", "type": "FLOAT"}, {"name": "num", "type": "NUMERIC"},
        {"name": "big", "type": "BIGNUMERIC"}, {"name": "flag", "type": "BOOLEAN"}, {"name": "s", "type": "STRING"},
        {"name": "b", "type": "BYTES"}, {"name": "d", "type": "DATE"}, {"name": "dt", "type": "DATETIME"},
        {"name": "ts", "type": "TIMESTAMP"}, {"name": "t", "type": "TIME"}, {"name": "label", "type": "INT64"},
    ]
    ids = list(range(N))
    day = datetime.date(2026, 11, 1)
    rows = pa.table({
        "id": pa.array(ids, pa.int64()),
        "f": pa.array([1e300 if i == 7 else i / 4 for i in ids], pa.float64()),
        "num": pa.array([decimal.Decimal(i) / 8 for i in ids], pa.decimal128(38, 9)),
        "big": pa.array([decimal.Decimal(10) ** 30 * i for i in ids], pa.decimal256(76, 38)),
        "flag": pa.array([None if i == 3 else i % 2 == 0 for i in ids], pa.bool_()),
        "s": pa.array([f"{i:03d}" for i in ids], pa.string()),  # looks like numbers; the schema says STRING
        "b": pa.array([f"b{i}".encode() for i in ids], pa.binary()),
        "d": pa.array([day + datetime.timedelta(days=i) for i in ids], pa.date32()),
        "dt": pa.array([datetime.datetime(2026, 11, 1, 12, 30, i) for i in ids], pa.timestamp("us")),
        "ts": pa.array([datetime.datetime(2026, 11, 1, 0, 0, i, 500000, UTC) for i in ids], pa.timestamp("us", "UTC")),
        "t": pa.array([datetime.time(8, 0, i) for i in ids], pa.time64("us")),
        "label": pa.array([i % 2 for i in ids], pa.int64()),
    })
    return schema, rows


class BigQuery:
    """Tables (REST schema, partitioning and Arrow rows) served over both APIs; every request recorded."""

    def __init__(self):
        self.tables: dict[str, tuple[list[dict], dict, pa.Table]] = {}
        self.sessions: list[types.CreateReadSessionRequest] = []
        self.reads: list[str] = []
        self.rest: list[tuple[str, str, dict]] = []
        self.newest: str | None = "20261125"
        self.refuse = ""  # a stream name's ending, answered with PERMISSION_DENIED
        self.chunk = 6  # rows a response (BigQuery sends up to 10 MiB)

    def add(self, name: str, schema: list[dict], rows: pa.Table, partitioning: dict | None = None) -> None:
        self.tables[name] = (schema, partitioning or {}, rows)

    def create_read_session(self, request: types.CreateReadSessionRequest, context) -> types.ReadSession:
        self.sessions.append(request)
        table = request.read_session.table.split("/tables/")[1]
        rows = self.tables[table][2].select(list(request.read_session.read_options.selected_fields))
        count = min(request.max_stream_count, 3)
        name = f"projects/p/locations/us/sessions/s{len(self.sessions)}"
        return types.ReadSession(
            name=name, table=request.read_session.table, data_format=types.DataFormat.ARROW,
            arrow_schema=types.ArrowSchema(serialized_schema=rows.schema.serialize().to_pybytes()),
            streams=[types.ReadStream(name=f"{name}/streams/{i}/{count}/{table}") for i in range(count)])

    def read_rows(self, request: types.ReadRowsRequest, context):
        self.reads.append(request.read_stream)
        if request.read_stream.endswith(self.refuse or "-"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "Access Denied: stream")
        session = int(request.read_stream.split("/sessions/s")[1].split("/")[0])
        index, count, table = request.read_stream.split("/streams/")[1].split("/")
        selected = list(self.sessions[session - 1].read_session.read_options.selected_fields)
        rows = self.tables[table][2].select(selected)
        mine = rows.take(np.arange(int(index), rows.num_rows, int(count)))
        for batch in mine.to_batches(max_chunksize=self.chunk):
            yield types.ReadRowsResponse(
                arrow_record_batch=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes(),
                                                          row_count=batch.num_rows),
                row_count=batch.num_rows)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        path = request.path.removeprefix("/bigquery/v2")
        self.rest.append((request.method, path, body))
        if "/tables/" in path:
            name = path.rsplit("/", 1)[1]
            if name not in self.tables:
                return web.json_response({"error": {"code": 404, "message": f"Not found: Table {name}",
                                                    "status": "NOT_FOUND"}}, status=404)
            schema, partitioning, _ = self.tables[name]
            project, dataset = path.split("/")[2], path.split("/")[4]
            return web.json_response({
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": name},
                "schema": {"fields": schema}, **({"timePartitioning": partitioning} if partitioning else {})})
        project = path.split("/")[2]
        if path.endswith("/jobs"):  # jobs.insert: a query, done at once, into a temporary result table (a SELECT)
            query = body["configuration"]["query"]
            result = {"projectId": project, "datasetId": "_anon", "tableId": "anon1"}
            return web.json_response({
                "jobReference": {"projectId": project, "jobId": "job1", "location": "US"}, "status": {"state": "DONE"},
                "configuration": {"query": {**query, **({"destinationTable": result} if "SELECT" in query["query"]
                                                        else {})}}})
        if "/queries/" in path:  # jobs.getQueryResults: how result() waits
            return web.json_response({"jobReference": {"projectId": project, "jobId": "job1"}, "jobComplete": True,
                                      "totalRows": "0", "schema": {"fields": []}})
        # jobs.query: the newest partition from INFORMATION_SCHEMA.PARTITIONS
        return web.json_response({"jobComplete": True, "totalRows": "1", "rows": [{"f": [{"v": self.newest}]}],
                                  "schema": {"fields": [{"name": "newest", "type": "STRING"}]}})


@pytest.fixture
def bigquery(monkeypatch):
    stand_in = BigQuery()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
        "CreateReadSession": grpc.unary_unary_rpc_method_handler(
            stand_in.create_read_session, request_deserializer=types.CreateReadSessionRequest.deserialize,
            response_serializer=types.ReadSession.serialize),
        "ReadRows": grpc.unary_stream_rpc_method_handler(
            stand_in.read_rows, request_deserializer=types.ReadRowsRequest.deserialize,
            response_serializer=types.ReadRowsResponse.serialize),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with http_server(stand_in.handle) as url:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", url)
        stand_in.endpoint = f"127.0.0.1:{port}"
        yield stand_in
    server.stop(None)


def config(stand_in: BigQuery, /, **fields) -> IngestConfig:
    options = BigQueryOptions(**{"endpoint": stand_in.endpoint, **fields.pop("bigquery", {})})
    return IngestConfig(**{"source": "bq://acme.sales.orders", "key": "id", **fields}, bigquery=options)


def test_every_type_reaches_the_examples_with_the_schema_types(bigquery, tmp_path):
    schema, rows = every_type()
    bigquery.add("orders", schema, rows)
    out = tmp_path / "out"
    result = run(config(bigquery, threads=2, batch_rows=16, max_rejected_fraction=0.05), str(out))
    assert result.rows == N - 1
    assert result.rejected == 1  # f = 1e300 is no float32
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["reason"].startswith("column 'f': expected a finite number within float32")
    features = {f["name"]: f["type"] for f in json.loads((out / "schema.json").read_text())["features"]}
    assert features == {"id": "int", "f": "float", "num": "float", "big": "float", "flag": "int", "s": "string",
                        "b": "string", "d": "string", "dt": "string", "ts": "string", "t": "string", "label": "int"}
    got = all_rows(read_examples(out), "id")
    assert sorted(got) == [i for i in range(N) if i != 7]
    row = got[9]
    assert row["f"] == pytest.approx(2.25)
    assert row["num"] == pytest.approx(1.125)
    assert row["big"] == pytest.approx(9e30)
    assert row["flag"] == 0
    assert got[8]["flag"] == 1
    assert (row["s"], row["b"]) == (b"009", b"b9")
    assert (row["d"], row["dt"]) == (b"2026-11-10", b"2026-11-01T12:30:09.000000")
    assert (row["ts"], row["t"]) == (b"2026-11-01T00:00:09.500000Z", b"08:00:09.000000")


def test_arrays_are_lists_of_their_type(bigquery, tmp_path):
    schema, rows = every_type()
    tags = [["gift", "sale", "bundle"][:i % 4] for i in range(N)]
    scores = [list(range(i % 3)) for i in range(N)]
    days = [[datetime.date(2026, 11, 1 + i % 28)] * (i % 2) for i in range(N)]
    schema += [{"name": "tags", "type": "STRING", "mode": "REPEATED"},
               {"name": "scores", "type": "INTEGER", "mode": "REPEATED"},
               {"name": "days", "type": "DATE", "mode": "REPEATED"}]
    rows = rows.append_column("tags", pa.array(tags, pa.list_(pa.string()))) \
        .append_column("scores", pa.array(scores, pa.list_(pa.int64()))) \
        .append_column("days", pa.array(days, pa.list_(pa.date32())))
    bigquery.add("orders", schema, rows)
    out = tmp_path / "out"
    run(config(bigquery, batch_rows=16, max_rejected_fraction=0.05), str(out))
    features = {f["name"]: f["type"] for f in json.loads((out / "schema.json").read_text())["features"]}
    assert (features["tags"], features["scores"], features["days"]) == ("string_list", "int_list", "string_list")
    stored = stored_rows(out)
    for i in (1, 2, 3, 9, 12):
        assert [t.decode() for t in stored[i].get("tags", [])] == tags[i]
        assert stored[i].get("scores", []) == scores[i]
        assert [d.decode() for d in stored[i].get("days", [])] == [d.isoformat() for d in days[i]]


def read_all(cfg: IngestConfig) -> list[sources.RawBatch]:
    with contextlib.closing(sources.read(sources.resolve(cfg), cfg)) as batches:
        return list(batches)


@pytest.mark.parametrize(("partitioning", "day_filter"), [
    ({"type": "DAY", "field": "d"}, "`d` = DATE '2026-11-25'"),
    ({"type": "DAY", "field": "ts"}, "`ts` >= TIMESTAMP '2026-11-25' AND `ts` < TIMESTAMP '2026-11-26'"),
    ({"type": "DAY"}, "_PARTITIONDATE = DATE '2026-11-25'"),
])
def test_the_read_session_asks_for_the_kept_columns_the_newest_day_and_the_snapshot(bigquery, partitioning,
                                                                                     day_filter):
    schema, rows = every_type()
    schema.append({"name": "where", "type": "GEOGRAPHY"})  # dropped: never read, so never an error
    bigquery.add("orders", schema, rows.append_column("where", pa.array(["POINT(0 0)"] * N)), partitioning)
    cfg = config(bigquery, source="bq://acme.sales.orders${YYYY}{MM}{DD}", threads=3, batch_rows=10,
                 drop=("where", "b", "id"),
                 bigquery={"project": "billing", "row_restriction": "label >= 0",
                           "snapshot_time": "2026-11-30T08:00:00+01:00"})
    batches = read_all(cfg)
    lookup = bigquery.rest[0]
    assert lookup[:2] == ("POST", "/projects/billing/queries")
    assert "`acme.sales.INFORMATION_SCHEMA.PARTITIONS`" in lookup[2]["query"]
    assert lookup[2]["queryParameters"][0]["parameterValue"] == {"value": "orders"}
    [request] = bigquery.sessions
    assert request.parent == "projects/billing"
    assert request.max_stream_count == 3
    session = request.read_session
    assert session.table == "projects/acme/datasets/sales/tables/orders"
    assert session.data_format == types.DataFormat.ARROW
    assert list(session.read_options.selected_fields) == [
        "id", "f", "num", "big", "flag", "s", "d", "dt", "ts", "t", "label"]  # the split key stays
    assert session.read_options.row_restriction == f"({day_filter}) AND (label >= 0)"
    assert session.table_modifiers.snapshot_time == datetime.datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert len(bigquery.reads) == 3  # every stream
    assert {b.file for b in batches} == set(bigquery.reads)
    lines = np.concatenate([b.lines for b in batches])
    assert sorted(lines) == list(range(1, N + 1))
    assert sorted(np.concatenate([b.table.column("id").to_numpy() for b in batches])) == list(range(N))
    assert batches[0].table.column("where").null_count == batches[0].table.num_rows


def test_a_query_runs_into_its_result_table_which_is_read_like_a_table(bigquery, tmp_path):
    schema, rows = every_type()
    bigquery.add("anon1", schema, rows)
    query = "SELECT * FROM sales.orders WHERE day = '{YYYY}-{MM}-{DD}'"
    cfg = config(bigquery, source="", query=query, source_date="2026-11-02", drop=("f",),
                 bigquery={"project": "billing", "timestamps": "seconds"})
    out = tmp_path / "out"
    assert run(cfg, str(out)).rows == N
    insert = bigquery.rest[0]
    assert insert[:2] == ("POST", "/projects/billing/jobs")
    assert insert[2]["configuration"]["query"]["query"] == "SELECT * FROM sales.orders WHERE day = '2026-11-02'"
    assert bigquery.sessions[0].read_session.table == "projects/billing/datasets/_anon/tables/anon1"
    described = json.loads((out / "schema.json").read_text())
    assert described["source"]["resolved_source"] == insert[2]["configuration"]["query"]["query"]
    assert described["source"]["files"] == ["bq://billing._anon.anon1"]
    features = {f["name"]: f["type"] for f in described["features"]}
    assert [features[n] for n in ("d", "dt", "ts", "t")] == ["int", "int", "int", "int"]
    row = all_rows(read_examples(out), "id")[9]
    day = int(datetime.datetime(2026, 11, 10, tzinfo=UTC).timestamp())
    assert (row["d"], row["dt"], row["ts"], row["t"]) == (day, day - 9 * 86400 + 12 * 3600 + 30 * 60 + 9,
                                                          day - 9 * 86400 + 9, 8 * 3600 + 9)


@pytest.mark.parametrize(("field", "named", "way_out"), [
    ({"name": "where", "type": "GEOGRAPHY"}, "column 'where' is GEOGRAPHY", "ST_ASTEXT(where)"),
    ({"name": "doc", "type": "JSON"}, "column 'doc' is JSON", "TO_JSON_STRING(doc)"),
    ({"name": "r", "type": "RECORD", "fields": [{"name": "x", "type": "INTEGER"}]}, "column 'r' is STRUCT", "r.field"),
    ({"name": "span", "type": "RANGE", "rangeElementType": {"type": "DATE"}}, "column 'span' is RANGE",
     "RANGE_START(span)"),
    ({"name": "wait", "type": "INTERVAL"}, "column 'wait' is INTERVAL", "CAST(wait AS STRING)"),
    ({"name": "spots", "type": "GEOGRAPHY", "mode": "REPEATED"}, "column 'spots' is REPEATED GEOGRAPHY",
     "ST_ASTEXT(spots)"),
])
def test_a_column_no_feature_can_hold_is_named_with_the_way_out(bigquery, tmp_path, field, named, way_out):
    schema, rows = every_type()
    bigquery.add("orders", [*schema, field], rows)
    with pytest.raises(BigQueryError) as error:
        run(config(bigquery), str(tmp_path / "out"))
    message = str(error.value)
    assert message.startswith(f"bq://acme.sales.orders: {named}")
    assert "add it to ingest.drop" in message
    assert way_out in message
    assert not bigquery.sessions
    assert not (tmp_path / "out").exists()


def test_bad_sources_and_options_are_named(bigquery, tmp_path):
    schema, rows = every_type()
    bigquery.add("orders", schema, rows, {"type": "DAY", "field": "d"})
    cases = [
        ({"source": "bq://acme.orders"}, "ingest.source: expected bq://project.dataset.table"),
        ({"source": "bq://acme.sales.missing"}, "bq://acme.sales.missing: reading its schema: .*Not found"),
        ({"drop": ("nope",)}, "ingest.drop: column\\(s\\) \\['nope'\\] not in bq://acme.sales.orders"),
        ({"bigquery": {"snapshot_time": "2026-11-30 08:00"}}, "snapshot_time: expected an RFC 3339 time with its zone"),
        ({"source": "", "query": "SELECT 1"}, "ingest.bigquery.project: a query needs the project"),
        ({"query": "SELECT 1"}, "ingest.query reads a query's result instead of ingest.source"),
        ({"source": "", "query": "DELETE sales.orders WHERE TRUE", "bigquery": {"project": "billing"}},
         "ingest.query: the query wrote no result table .* expected one SELECT"),
        ({"source": "bq://acme.sales.orders$2026110"}, "expected a day partition \\$YYYYMMDD, got \\$2026110"),
        ({"source": "bq://acme.sales.events_{YYYY}{MM}{DD}"}, "for a partition .* only; set ingest.source_date"),
    ]
    for fields, message in cases:
        with pytest.raises(BigQueryError, match=message):
            read_all(config(bigquery, **fields))
    bigquery.add("flat", schema, rows)
    with pytest.raises(BigQueryError, match="\\$20261101 names a day's partition, but the table is not partitioned"):
        read_all(config(bigquery, source="bq://acme.sales.flat$20261101"))
    bigquery.add("events_20261103", schema, rows)  # a date-sharded table: ingest.source_date names the shard
    bigquery.newest = None
    with pytest.raises(SpanError, match="no day partition of acme.sales.orders holds rows"):
        read_all(config(bigquery, source="bq://acme.sales.orders${YYYY}{MM}{DD}"))
    assert sum(b.table.num_rows for b in read_all(
        config(bigquery, source="bq://acme.sales.events_{YYYY}{MM}{DD}", source_date="2026-11-03"))) == N


def test_the_beam_engine_reads_the_streams_of_one_session_and_writes_what_the_local_engine_writes(bigquery, tmp_path):
    schema, rows = every_type()
    bigquery.add("orders", schema, rows)
    cfg = config(bigquery, threads=2, batch_rows=16, max_rejected_fraction=0.05)
    local = run(cfg, str(tmp_path / "local"))
    sessions = len(bigquery.sessions)
    beam = run(dataclasses.replace(cfg, engine="beam"), str(tmp_path / "beam"),
               BeamConfig(workers=3, options=("--direct_running_mode=multi_threading",)))
    assert (beam.rows, beam.rejected, beam.splits) == (local.rows, local.rejected, local.splits)
    local_rows = all_rows(read_examples(tmp_path / "local"), "id")
    beam_rows = all_rows(read_examples(tmp_path / "beam"), "id")
    assert sorted(beam_rows) == sorted(local_rows) == [i for i in range(N) if i != 7]
    for key, row in local_rows.items():
        assert {c: np.asarray(v).tolist() for c, v in beam_rows[key].items()} == \
            {c: np.asarray(v).tolist() for c, v in row.items()}, key
    assert (tmp_path / "beam" / "schema.pbtxt").read_text() == (tmp_path / "local" / "schema.pbtxt").read_text()
    # The sample's session, then one of 3 streams, each read once by the unit that holds it.
    beam_sessions = bigquery.sessions[sessions:]
    assert [s.max_stream_count for s in beam_sessions] == [2, 3]
    read = [r for r in bigquery.reads if "/sessions/s" + str(sessions + 2) + "/" in r]
    assert sorted(read) == [f"projects/p/locations/us/sessions/s{sessions + 2}/streams/{i}/3/orders" for i in range(3)]


def test_the_stream_threads_end_when_the_read_stops_early_or_a_stream_fails(bigquery):
    schema, rows = every_type()
    bigquery.add("orders", schema, pa.concat_tables([rows] * 50))
    cfg = config(bigquery, threads=3, batch_rows=6)
    with contextlib.closing(sources.read(sources.resolve(cfg), cfg)) as batches:
        first = next(batches)
    assert first.table.num_rows == 6
    assert not stream_threads()
    bigquery.refuse = "/streams/2/3/orders"
    with pytest.raises(BigQueryError, match="^bq://acme.sales.orders: reading its streams: Access Denied: stream"):
        read_all(cfg)
    assert not stream_threads()


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("bigquery-stream")]
