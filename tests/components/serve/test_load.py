"""The server under load: batching merges requests, a full queue refuses, a new version swaps in with no
failed request, and 10,000 requests with 10% malformed get no 5xx and every good answer right."""

import json
import os
import random
import shutil
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2

from components.common.config import BatchingConfig
from components.serve.client import GrpcClient, RestClient, ServeError
from components.serve.server import running
from components.serve.tensors import to_proto
from tests.components.serve.conftest import config
from tests.components.serve.test_grpc import columns
from tests.components.serve.test_rest import VALID, reference
from tests.components.serve.test_versions import wait_until

ROWS = [VALID, {**VALID, "island": "Biscoe", "flipper_length_mm": 225, "body_mass_g": 5600},
        {**VALID, "bill_length_mm": 50.0, "bill_depth_mm": 19.0, "flipper_length_mm": 198}]


def metric(server, name: str) -> dict:
    client = RestClient(server.rest_url, "penguins")
    client.connection.request("GET", "/monitoring/prometheus/metrics")
    text = client.connection.getresponse().read().decode()
    client.close()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith(name)}


def in_threads(count: int, work) -> list:
    results = [None] * count
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, work(i))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_batching_merges_concurrent_requests(penguins_home):
    expected = reference(penguins_home, ROWS)["class_ids"].tolist()
    batching = BatchingConfig(enabled=True, max_batch_size=32, batch_timeout_micros=20000)
    with running(config(penguins_home, batching=batching)) as server:
        def client_work(i):
            client = RestClient(server.rest_url, "penguins")
            answers = [client.predict(instances=[ROWS[(i + j) % 3]])["predictions"][0]["class_ids"]
                       for j in range(15)]
            client.close()
            return answers == [expected[(i + j) % 3] for j in range(15)]

        assert all(in_threads(12, client_work))
        rows = metric(server, "tfpipe_serve_batch_rows")
    calls, total = rows["tfpipe_serve_batch_rows_count"], rows["tfpipe_serve_batch_rows_sum"]
    assert total == 12 * 15  # every request's one row, counted once
    assert total / calls > 2, f"{calls:.0f} model calls for {total:.0f} rows: requests were not merged"


def test_a_full_batch_leaves_without_waiting_for_its_timeout(penguins_home):
    expected = reference(penguins_home, ROWS)["class_ids"].tolist()
    # An hour's timeout: a batch that did not leave when full would keep both requests past their client's 30 s.
    batching = BatchingConfig(enabled=True, max_batch_size=6, batch_timeout_micros=3_600_000_000)
    with running(config(penguins_home, batching=batching)) as server:
        answers = in_threads(2, lambda i: RestClient(server.rest_url, "penguins").predict(
            instances=ROWS)["predictions"])
        rows = metric(server, "tfpipe_serve_batch_rows")
    assert [[p["class_ids"] for p in a] for a in answers] == [expected, expected]
    assert rows["tfpipe_serve_batch_rows_count"] == 1
    assert rows["tfpipe_serve_batch_rows_sum"] == 6


def test_a_full_queue_refuses_at_once(penguins_home):
    """Refused, not queued: the 429 comes while the queued request still waits for company (its batch timeout is
    a minute), and the rows that do fit then fill its batch and send both on their way."""
    batching = BatchingConfig(enabled=True, max_batch_size=64, max_enqueued_batches=1, batch_timeout_micros=60_000_000)
    with running(config(penguins_home, batching=batching)) as server:
        answered = []
        waiting = threading.Thread(target=lambda: answered.append(
            RestClient(server.rest_url, "penguins").predict(instances=ROWS * 13)["predictions"]))
        waiting.start()  # 39 rows wait for company
        deadline = time.monotonic() + 60  # a hang guard: the queue's depth says when they wait
        while metric(server, "tfpipe_serve_batch_queued_rows").get("tfpipe_serve_batch_queued_rows") != 39:
            assert time.monotonic() < deadline, "the first request never reached the batching queue"
            time.sleep(0.01)
        with pytest.raises(ServeError) as error:
            RestClient(server.rest_url, "penguins").predict(instances=ROWS * 10)  # 30 more do not fit in 64
        assert error.value.code == 429
        assert "queue is full" in error.value.message
        with pytest.raises(ServeError, match="RESOURCE_EXHAUSTED"):
            GrpcClient(server.grpc_target, "penguins").predict(columns(ROWS * 10))
        assert waiting.is_alive()  # still queued: the refusals did not wait for it
        assert not answered
        filled = RestClient(server.rest_url, "penguins").predict(instances=ROWS * 8 + ROWS[:1])["predictions"]
        waiting.join(60)
    assert len(filled) == 25
    assert len(answered) == 1
    assert len(answered[0]) == 39


def test_a_new_version_swaps_in_under_load_with_no_failed_request(tmp_path, penguins_home):
    """Every client has an answer from version 1 before version 2 appears, and goes on until it has one from
    version 2: the swap happens under load whatever the pace of the machine."""
    home = tmp_path / "penguins"
    shutil.copytree(penguins_home / "1", home / "1")
    stop = threading.Event()
    seen: list[list[int]] = [[] for _ in range(4)]
    with running(config(home)) as server:
        def client_work(i):
            client = GrpcClient(server.grpc_target, "penguins")
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "penguins"
            for name, value in columns(ROWS).items():
                request.inputs[name].CopyFrom(to_proto(value))
            failures = 0
            while not stop.is_set():
                try:
                    seen[i].append(client.predictions.Predict(request, timeout=30).model_spec.version.value)
                except Exception:  # any failure counts
                    failures += 1
            client.close()
            return failures

        failures = []
        workers = threading.Thread(target=lambda: failures.extend(in_threads(4, client_work)))
        workers.start()
        wait_until(lambda: all(seen))
        shutil.copytree(home / "1", tmp_path / "staging")
        os.rename(tmp_path / "staging", home / "2")  # a new version appears whole, as export publishes it
        wait_until(lambda: all(2 in answers for answers in seen))
        stop.set()
        workers.join()
        assert {v.state for v in server.manager.states.values()} == {"END", "AVAILABLE"}
    assert failures == [0] * 4
    for answers in seen:
        assert answers[0] == 1
        assert answers[-1] == 2
        assert 1 not in answers[answers.index(2):], "an answer from the old version came after one from the new"


@pytest.mark.slow
def test_ten_thousand_requests_ten_percent_malformed(bare_penguins_home):
    penguins_home = bare_penguins_home  # a left-out input is malformed only without the schema's defaults
    expected = reference(penguins_home, ROWS)["class_ids"].tolist()
    good = [json.dumps({"instances": [row]}).encode() for row in ROWS]
    bad = [b"{oops", json.dumps({"instances": [{**VALID, "year": "soon"}]}).encode(),
           json.dumps({"instances": [{**VALID, "bill_depth_mm": [[1.0]]}]}).encode(),
           json.dumps({"signature_name": "nope", "instances": [VALID]}).encode(),
           json.dumps({"instances": [{"island": None}]}).encode(), b"[]", b"",
           b'{"instances": [' + b"1," * 40000 + b"1]}"]
    paths = {"ok": "/v1/models/penguins:predict", "unknown": "/v1/models/nobody:predict"}
    with running(config(penguins_home, max_request_bytes=64 * 1024,
                        batching=BatchingConfig(enabled=True))) as server:
        def client_work(i):
            rng = random.Random(i)
            client = RestClient(server.rest_url, "penguins")
            wrong, server_errors, refused = 0, 0, 0
            for _ in range(2500):
                if rng.random() < 0.1:
                    body = rng.choice(bad)
                    path = paths["unknown"] if rng.random() < 0.1 else paths["ok"]
                    try:
                        client.request("POST", path, body)
                        wrong += 1  # a malformed request must not be answered 200
                    except ServeError as e:
                        server_errors += e.code >= 500
                        refused += 400 <= e.code < 500
                else:
                    k = rng.randrange(3)
                    answer = client.request("POST", paths["ok"], good[k])["predictions"][0]["class_ids"]
                    wrong += answer != expected[k]
            client.close()
            return wrong, server_errors, refused

        results = in_threads(4, client_work)
        assert server.manager.ready
    assert sum(r[0] for r in results) == 0
    assert sum(r[1] for r in results) == 0
    assert 800 < sum(r[2] for r in results) < 1200
