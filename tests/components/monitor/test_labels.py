"""Labels read with ingest's readers: a BigQuery table (against the stand-in APIs on 127.0.0.1) and Parquet files
typed as they were written, checked against the training schema's classes and key."""

import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.common.config import BigQueryOptions, LabelsConfig
from components.common.schema import Feature, Schema
from components.common.task import Task
from components.monitor import MonitorError, labels
from tests.components.ingest.test_bigquery import bigquery  # noqa: F401 (the stand-in, a fixture)

SCHEMA = Schema(features=(Feature("tenure", "int", {}), Feature("churned", "int", {"min": 0, "max": 1})),
                label="churned", key="customer_id")
TASK = Task("classification", ("0", "1"))


def test_a_bigquery_table_of_labels_is_read_with_its_types(bigquery):  # noqa: F811 (the fixture)
    known = [datetime.datetime(2026, 11, 3, 8, 0, i, tzinfo=datetime.UTC) for i in range(4)]
    bigquery.add("labels", [{"name": "customer_id", "type": "STRING"}, {"name": "churned", "type": "INT64"},
                            {"name": "known_at", "type": "TIMESTAMP"}],
                 pa.table({"customer_id": ["a", "b", "c", "a"], "churned": pa.array([1, 0, 1, 0], pa.int64()),
                           "known_at": pa.array(known, pa.timestamp("us", "UTC"))}))
    read = labels.read(LabelsConfig(bigquery=BigQueryOptions(endpoint=bigquery.endpoint)), SCHEMA, TASK,
                       "bq://acme.crm.labels")
    assert {k: (v.value, v.known_at) for k, v in read.by_key.items()} == {
        "a": ("0", int(known[3].timestamp())), "b": ("0", int(known[1].timestamp())),
        "c": ("1", int(known[2].timestamp()))}
    assert (read.rows, read.duplicated) == (4, 1)


def test_parquet_labels_keep_their_types_and_integer_keys_are_told_from_text_ones(tmp_path):
    pq.write_table(pa.table({"customer_id": pa.array([7, 8], pa.int64()), "churned": pa.array([1.0, 0.0]),
                             "known_at": ["2026-11-03", None]}), tmp_path / "labels.parquet")
    read = labels.read(LabelsConfig(), SCHEMA, TASK, str(tmp_path / "labels.parquet"))
    assert {k: (v.value, v.known_at) for k, v in read.by_key.items()} == {
        "7": ("1", int(datetime.datetime(2026, 11, 3, tzinfo=datetime.UTC).timestamp())), "8": ("0", None)}
    labels.check_key_kind(read, ["12", "13"])
    with pytest.raises(MonitorError, match=r"labels.parquet: column 'customer_id': its keys are integer \(e.g. '7'\) "
                                           r"and the logged predictions' keys are text \(e.g. 'x-1'\)"):
        labels.check_key_kind(read, ["x-1"])


def test_a_time_that_is_not_one_is_named_with_its_line(tmp_path):
    (tmp_path / "labels.csv").write_text("customer_id,churned,when\na,1,2026-11-03\nb,0,yesterday\n")
    with pytest.raises(MonitorError, match=r"labels.csv:3: column 'when': 'yesterday' is not a time"):
        labels.read(LabelsConfig(known_at="when"), SCHEMA, TASK, str(tmp_path / "labels.csv"))
