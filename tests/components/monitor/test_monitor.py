"""End to end: a served model's logged requests, first from the training distribution, then from a shifted one."""

import random

import numpy as np
import tensorflow as tf

from components import monitor
from components.common import reader
from components.common.config import MonitorConfig, RequestLogConfig
from components.common.metadata import DataMetadata
from components.common.schema import LIST_PADDING, Schema
from components.serve.client import GrpcClient, RestClient
from components.serve.server import running
from components.serve.tensors import padded
from tests.components.serve.conftest import config

WINDOW = 4  # seconds: each batch of requests is stamped within one window
START = 1_800_000_000.0  # the first window's start: a multiple of WINDOW, as monitor's windows are aligned
SHIFTED = {"body_mass_g", "flipper_length_mm", "island"}


def training_rows(examples: str) -> list[dict]:
    """The train split's rows as plain values, without the label."""
    schema = Schema.read(examples)
    spec = {k: v for k, v in schema.parse_spec().items() if k != schema.label}
    batch = next(iter(tf.data.TFRecordDataset(reader.files_of(examples, "train"), compression_type="GZIP")
                      .batch(100_000)))
    parsed = tf.io.parse_example(batch, spec)
    return [{k: plain(v[i].numpy()) for k, v in parsed.items()} for i in range(len(batch))]


def plain(value):
    """A parsed value as JSON holds it: text for bytes, a list for a list feature's values."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value]
    return value.decode() if isinstance(value, bytes) else value.item()


def shift(row: dict) -> dict:
    """Heavier birds with longer flippers, all seen on Biscoe."""
    return {**row, "body_mass_g": row["body_mass_g"] + 1500, "flipper_length_mm": row["flipper_length_mm"] + 25,
            "island": "Biscoe"}


def example(row: dict) -> tf.train.Example:
    def feature(value):
        values = value if isinstance(value, list) else [value]
        if not values:  # an empty list: no value, as ingest writes it
            return tf.train.Feature()
        if isinstance(values[0], str):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
        if isinstance(values[0], int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in row.items()}))


def send(rest: RestClient, grpc: GrpcClient, rows: list[dict]) -> int:
    """The rows through every API in 25-row requests: REST and gRPC predict, REST and gRPC classify."""
    chunks = [rows[i:i + 25] for i in range(0, len(rows), 25)]
    for i, chunk in enumerate(chunks):
        if i % 4 == 0:
            rest.predict(instances=chunk)
        elif i % 4 == 1:
            grpc.predict({k: tensor([r[k] for r in chunk]) for k in chunk[0]})
        elif i % 4 == 2:
            rest.classify(chunk)
        else:
            grpc.classify([example(r) for r in chunk])
    return len(chunks)


def tensor(values: list) -> np.ndarray:
    """One input's values as a gRPC tensor: a list per example padded to the longest, as the signature takes it."""
    rows = values if isinstance(values[0], list) else None
    flat = [v for row in rows for v in row] if rows is not None else values
    kind = "string" if any(isinstance(v, str) for v in flat) else \
        "float" if any(isinstance(v, float) for v in flat) else "int"
    array = np.array(flat, dtype={"string": object, "float": np.float32, "int": np.int64}[kind])
    if rows is None:
        return array
    padding = "" if kind == "string" else LIST_PADDING[kind]
    return padded(array, np.array([len(row) for row in rows]), padding)


def log_traffic(home, examples: str, logs) -> list[int]:
    """Serves `home` with every request logged into `logs`: 400 rows drawn from the training data in one window,
    then 400 shifted ones in the next; the requests sent in each. The server's clock is the test's: it reads the
    start of a window while each batch is sent (each request is stamped before it is answered), however long the
    sending takes."""
    rng = random.Random(0)
    rows = training_rows(examples)
    first, second = rng.choices(rows, k=400), [shift(r) for r in rng.choices(rows, k=400)]
    now = [START]
    logging = RequestLogConfig(sampling_rate=1.0, dir=str(logs))
    with running(config(home, logging=logging), clock=lambda: now[0]) as server:
        rest, grpc = RestClient(server.rest_url, "penguins"), GrpcClient(server.grpc_target, "penguins")
        sent = []
        for window, batch in enumerate((first, second)):
            now[0] = START + window * WINDOW
            sent.append(send(rest, grpc, batch))
        rest.close()
        grpc.close()
    return sent


def test_monitor_finds_no_skew_in_training_traffic_and_names_what_shifted(tmp_path, penguins_home, penguins_examples):
    logs = tmp_path / "logs"
    sent = log_traffic(penguins_home, penguins_examples, logs)
    result = monitor.run(MonitorConfig(retrain_on=("drift",)), str(logs), penguins_examples, str(tmp_path / "out"),
                         window=WINDOW)
    before, after = result.findings.windows
    assert (before.requests, before.rows, after.requests, after.rows) == (sent[0], 400, sent[1], 400)
    assert after.start == before.end
    assert after.drift_against == before.start
    assert before.crossed("skew") == ()
    assert not before.anomalies
    assert not after.anomalies
    measured = {m.subject for m in before.measurements}
    assert measured == {"bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm", "island", "sex",
                        "year", "predictions (species)"}
    for kind in ("skew", "drift"):
        assert {m.subject for m in after.crossed(kind)} == SHIFTED | {"predictions (species)"}, kind
    assert result.crossed
    assert result.retrain
    assert "THRESHOLD CROSSED (retrain)" in result.findings.headline()

    out = tmp_path / "out"
    assert monitor.Findings.from_json((out / "findings.json").read_text()) == result.findings
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4  # one figure per crossed feature of window 2
    assert "no requests" not in page
    stats = DataMetadata.read(str(out / after.statistics))
    assert stats.all_examples.num_examples == 400
    assert stats.label == "species"
