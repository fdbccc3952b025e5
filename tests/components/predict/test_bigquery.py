"""Predictions into a BigQuery table: the real client's load job, checked as sent to a stand-in on 127.0.0.1."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from components import predict
from components.common.config import PredictConfig
from components.common.errors import TfpipeError
from components.predict import model
from tests.conftest import http_server


class BigQuery:
    """Answers a load job's resumable upload (POST the job, PUT the file) and jobs.get, as BigQuery's REST API
    does; or refuses the job with `fail`."""

    def __init__(self, fail: str = ""):
        self.fail = fail
        self.jobs: list[tuple[dict, bytes]] = []
        self.started: dict = {}

    async def handle(self, request):
        from aiohttp import web

        if request.method == "POST" and request.path.startswith("/upload/bigquery/v2/projects/"):
            if self.fail:
                return web.json_response({"error": {"code": 403, "message": self.fail, "status": "DENIED"}},
                                         status=403)
            self.started = json.loads(await request.read())
            return web.Response(headers={"Location": f"{request.scheme}://{request.host}/upload/session/1"})
        if request.method == "PUT":
            self.jobs.append((self.started, await request.read()))
        return web.json_response({**self.started, "jobReference": {"projectId": "acme", "jobId": "load-1",
                                                                   "location": "US"}, "status": {"state": "DONE"}})


@pytest.fixture
def bigquery(monkeypatch):
    stand_in = BigQuery()
    with http_server(stand_in.handle) as url:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", url)
        yield stand_in


def test_the_predictions_replace_the_table_in_one_parquet_load_job(bigquery, penguins_home, penguins_examples,
                                                                   tmp_path):
    report = tmp_path / "report"
    result = predict.run(PredictConfig(keep=("island",)), model.resolve(penguins_home, 1), "bq://acme.scores.day3",
                         examples=penguins_examples, report=str(report))
    [(job, data)] = bigquery.jobs
    load = job["configuration"]["load"]
    assert load["destinationTable"] == {"projectId": "acme", "datasetId": "scores", "tableId": "day3"}
    assert load["sourceFormat"] == "PARQUET"
    assert load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["parquetOptions"]["enableListInference"] is True
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == result.rows
    assert table.column_names == ["file", "line", "island", "predicted_class",
                                                                      "probabilities"]
    assert result.load_job == "load-1"
    assert predict.PredictResult.read(str(report)) == result
    assert sorted(p.name for p in report.iterdir()) == ["_predict.json", "_rejected.jsonl"]


def test_a_refused_load_is_one_line_naming_the_table(monkeypatch, penguins_home, penguins_examples, tmp_path):
    stand_in = BigQuery(fail="Access Denied: Dataset acme:scores")
    with http_server(stand_in.handle) as url:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", url)
        with pytest.raises(TfpipeError) as raised:  # the CLI's one line and exit 2
            predict.run(PredictConfig(), model.resolve(penguins_home, 1), "bq://acme.scores.day3",
                        examples=penguins_examples, report=str(tmp_path / "report"))
    assert "acme.scores.day3" in str(raised.value)
    assert "Access Denied" in str(raised.value)
    assert not (tmp_path / "report").exists()
