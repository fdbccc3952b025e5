"""BigQuery sources end to end against stand-ins on 127.0.0.1: the Storage Read API (gRPC, Arrow) and the REST API.

google-cloud-bigquery-storage 2.43 ships no generated servicer (its GAPIC
client builds the stubs itself), so the stand-in registers the real service and
method names with the real request and response messages, and answers with
Arrow IPC record batches as BigQuery does. The REST stand-in answers what
google-cloud-bigquery asks when it reads a table's metadata and runs a query.
"""

from __future__ import annotations

import datetime
import decimal
import json
from concurrent import futures

import grpc
import numpy as np
import pyarrow as pa
import pytest
from aiohttp import web
from google.cloud.bigquery_storage_v1 import types

from components.common.config import BigQueryOptions, IngestConfig
from components.ingest import run
from components.ingest.bigquery import BigQueryError, Column, rows_to_arrow
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
        self.newest = "20261125"

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
        session = int(request.read_stream.split("/sessions/s")[1].split("/")[0])
        index, count, table = request.read_stream.split("/streams/")[1].split("/")
        selected = list(self.sessions[session - 1].read_session.read_options.selected_fields)
        rows = self.tables[table][2].select(selected)
        mine = rows.take(np.arange(int(index), rows.num_rows, int(count)))
        for batch in mine.to_batches(max_chunksize=6):
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
        return web.json_response({})


@pytest.fixture()
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


def config(bigquery: BigQuery, **fields) -> IngestConfig:
    options = BigQueryOptions(**{"endpoint": bigquery.endpoint, **fields.pop("bigquery", {})})
    return IngestConfig(**{"source": "bq://acme.sales.orders", "key": "id", **fields}, bigquery=options)


def test_every_type_reaches_the_examples_with_the_schema_types(bigquery, tmp_path):
    schema, rows = every_type()
    bigquery.add("orders", schema, rows)
    out = tmp_path / "out"
    result = run(config(bigquery, threads=2, batch_rows=16, max_rejected_fraction=0.05), str(out))
    assert result.rows == N - 1 and result.rejected == 1  # f = 1e300 is no float32
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["reason"].startswith("column 'f': expected a finite number within float32")
    features = {f["name"]: f["type"] for f in json.loads((out / "schema.json").read_text())["features"]}
    assert features == {"id": "int", "f": "float", "num": "float", "big": "float", "flag": "int", "s": "string",
                        "b": "string", "d": "string", "dt": "string", "ts": "string", "t": "string", "label": "int"}
    got = all_rows(read_examples(out), "id")
    assert sorted(got) == [i for i in range(N) if i != 7]
    row = got[9]
    assert row["f"] == pytest.approx(2.25) and row["num"] == pytest.approx(1.125) and row["big"] == pytest.approx(9e30)
    assert row["flag"] == 0 and got[8]["flag"] == 1
    assert (row["s"], row["b"]) == (b"009", b"b9")
    assert (row["d"], row["dt"]) == (b"2026-11-10", b"2026-11-01T12:30:09.000000")
    assert (row["ts"], row["t"]) == (b"2026-11-01T00:00:09.500000Z", b"08:00:09.000000")
