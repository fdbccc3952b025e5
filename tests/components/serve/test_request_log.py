"""Request logging: every API's requests as TF Serving's PredictionLogs, in rotated files, never in a request's way."""

import shutil
import threading
import time
import urllib.request

import numpy as np
import tensorflow as tf
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from components.common.config import RequestLogConfig
from components.serve import request_log
from components.serve.client import GrpcClient, RestClient
from components.serve.request_log import RequestLog
from components.serve.server import running
from tests.components.serve.conftest import config
from tests.components.serve.test_grpc import columns
from tests.components.serve.test_rest import VALID

STAMP = 1_800_000_123  # the time the server's clock says
SECOND = {**VALID, "island": "Biscoe", "flipper_length_mm": 225, "body_mass_g": 5600}


def read_logs(folder) -> list[prediction_log_pb2.PredictionLog]:
    """Every record of the published files, oldest file first; hidden (unfinished) files are not read."""
    files = sorted(str(p) for p in folder.glob("requests-*.tfrecord"))
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]


def metric(url: str, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"{url}/monitoring/prometheus/metrics").read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def example(row: dict) -> bytes:
    features = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) if isinstance(v, str) else
                tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) if isinstance(v, int) else
                tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in row.items()}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def test_every_api_is_logged_as_tf_serving_logs_it(tmp_path, penguins_home):
    folder = tmp_path / "logs"
    logging = RequestLogConfig(sampling_rate=1.0, dir=str(folder))
    with running(config(penguins_home, logging=logging), clock=lambda: STAMP + 0.75) as server:
        rest, grpc = RestClient(server.rest_url, "penguins"), GrpcClient(server.grpc_target, "penguins")
        predicted = rest.predict(instances=[VALID, SECOND])["predictions"]
        classified = rest.classify([VALID, SECOND])
        sent = predict_pb2.PredictRequest()
        sent.model_spec.name = "penguins"
        for name, value in columns([VALID, SECOND]).items():
            sent.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        answered = grpc.predictions.Predict(sent, timeout=30)
        grpc.classify([example(VALID)])
        wait_for(lambda: metric(server.rest_url, "tfpipe_serve_request_log_written_total") == 4)
        assert metric(server.rest_url, "tfpipe_serve_request_log_dropped_total") == 0
        rest.connection.close()
        grpc.close()
    rest_predict, rest_classify, grpc_predict, grpc_classify = read_logs(folder)
    assert not list(folder.glob(".*")), "the open file is published when the server stops"

    request = rest_predict.predict_log.request
    assert request.model_spec.name == "penguins"
    assert request.model_spec.signature_name == "serving_default"
    assert [v.decode() for v in tf.make_ndarray(request.inputs["island"])] == ["Dream", "Biscoe"]
    assert tf.make_ndarray(request.inputs["body_mass_g"]).tolist() == [4000, 5600]
    np.testing.assert_allclose(tf.make_ndarray(rest_predict.predict_log.response.outputs["probabilities"]),
                               [p["probabilities"] for p in predicted], atol=1e-6)
    metadata = rest_predict.log_metadata
    assert (metadata.model_spec.name, metadata.model_spec.version.value, metadata.model_spec.signature_name) == \
        ("penguins", 1, "serving_default")
    assert metadata.sampling_config.sampling_rate == 1.0
    assert metadata.timestamp_secs == STAMP  # whole seconds, as TF Serving writes them

    examples = rest_classify.classify_log.request.input.example_list.examples
    assert [e.features.feature["island"].bytes_list.value[0] for e in examples] == [b"Dream", b"Biscoe"]
    scores = [[c.score for c in row.classes] for row in rest_classify.classify_log.response.result.classifications]
    np.testing.assert_allclose(scores, [[score for _, score in row] for row in classified], atol=1e-6)
    assert rest_classify.log_metadata.model_spec.signature_name == "classification"

    assert grpc_predict.predict_log.request == sent
    assert grpc_predict.predict_log.response == answered
    assert grpc_classify.classify_log.request.input.example_list.examples[0].SerializeToString() == example(VALID)
    assert len(grpc_classify.classify_log.response.result.classifications) == 1


def test_regress_logs_in_both_forms(tmp_path):
    log = RequestLog(RequestLogConfig(sampling_rate=1.0, dir=str(tmp_path)), CollectorRegistry())
    outputs = {"outputs": np.array([1.5, 2.5], dtype=np.float32)}
    log.offer(request_log.regress_examples, ("fish", None, "stable"), "regression", 3, [example(VALID)] * 2, outputs)
    log.close()
    [record] = read_logs(tmp_path)
    assert [r.value for r in record.regress_log.response.result.regressions] == [1.5, 2.5]
    assert record.regress_log.request.model_spec.version_label == "stable"
    assert record.log_metadata.model_spec.version.value == 3
    log = RequestLog(RequestLogConfig(sampling_rate=1.0, dir=str(tmp_path)), CollectorRegistry())
    log.offer(request_log.regress_protos, record.regress_log.request, record.regress_log.response)
    log.close()
    assert read_logs(tmp_path)[1].regress_log == record.regress_log


def logged_rows(record) -> list[float]:
    return tf.make_ndarray(record.predict_log.request.inputs["x"]).tolist()


def test_files_rotate_within_the_budget_oldest_first(tmp_path):
    registry = CollectorRegistry()
    log = RequestLog(RequestLogConfig(sampling_rate=1.0, dir=str(tmp_path), max_file_bytes=2048, max_files=3),
                     registry)
    for i in range(60):  # each record ~700 bytes: about three to a file
        log.offer(request_log.predict_arrays, ("m", None, None), "serving_default", 1,
                  {"x": np.full(160, i, dtype=np.float32)}, {"y": np.zeros(1, dtype=np.float32)})
    log.close()
    files = sorted(tmp_path.iterdir())
    assert 2 <= len(files) <= 3
    assert all(f.name.startswith("requests-") for f in files)
    assert all(f.stat().st_size < 2048 + 1024 for f in files)
    kept = [logged_rows(r)[0] for r in read_logs(tmp_path)]
    assert kept == list(range(60 - len(kept), 60)), "the newest records are kept, in order"
    assert registry.get_sample_value("tfpipe_serve_request_log_written_total") == 60


def test_a_full_queue_drops_records_and_counts_them(tmp_path):
    """The writer is held inside its first record's builder while the queue fills: exactly the records past
    QUEUE_LIMIT are dropped, and nothing the queue held is lost."""
    registry = CollectorRegistry()
    log = RequestLog(RequestLogConfig(sampling_rate=1.0, dir=str(tmp_path)), registry)
    taken, release = threading.Event(), threading.Event()

    def held(*args):
        taken.set()
        assert release.wait(60)
        return request_log.predict_arrays(*args)

    def offer(build, i: int) -> None:
        log.offer(build, ("m", None, None), "", 1, {"x": np.full(1, i, dtype=np.float32)},
                  {"y": np.zeros(1, dtype=np.float32)})

    offer(held, -1)
    assert taken.wait(60), "the writer never took the first record"
    for i in range(request_log.QUEUE_LIMIT + 10):
        offer(request_log.predict_arrays, i)
    release.set()
    log.close()
    assert registry.get_sample_value("tfpipe_serve_request_log_dropped_total", {"reason": "queue_full"}) == 10
    assert registry.get_sample_value("tfpipe_serve_request_log_written_total") == request_log.QUEUE_LIMIT + 1
    assert [logged_rows(r)[0] for r in read_logs(tmp_path)] == list(range(-1, request_log.QUEUE_LIMIT))


def test_sampling_logs_about_the_rate(tmp_path):
    log = RequestLog(RequestLogConfig(sampling_rate=0.25, dir=str(tmp_path)), CollectorRegistry())
    for _ in range(2000):
        log.offer(request_log.predict_arrays, ("m", None, None), "", 1, {"x": np.zeros(1, dtype=np.float32)},
                  {"y": np.zeros(1, dtype=np.float32)})
    log.close()
    assert 400 <= len(read_logs(tmp_path)) <= 600


def test_a_failing_disk_never_fails_a_request(tmp_path, penguins_home):
    folder = tmp_path / "logs"
    logging = RequestLogConfig(sampling_rate=1.0, dir=str(folder), max_file_bytes=1024)  # a file per request
    rows = [VALID] * 12  # a record over 1 KB
    with running(config(penguins_home, logging=logging)) as server:
        rest = RestClient(server.rest_url, "penguins")
        rest.predict(instances=rows)
        wait_for(lambda: metric(server.rest_url, "tfpipe_serve_request_log_written_total") == 1)
        shutil.rmtree(folder)
        folder.write_text("a file where the folder was")
        assert len(rest.predict(instances=rows)["predictions"]) == 12
        wait_for(lambda: metric(server.rest_url, "tfpipe_serve_request_log_dropped_total", reason="write_failed") == 1)
        folder.unlink()
        folder.mkdir()
        rest.predict(instances=rows)
        wait_for(lambda: metric(server.rest_url, "tfpipe_serve_request_log_written_total") == 2)
        rest.connection.close()
    assert len(read_logs(folder)) == 1


def test_without_logging_there_is_no_logger(penguins_server):
    RestClient(penguins_server.rest_url, "penguins").predict(instances=[VALID])
    text = urllib.request.urlopen(f"{penguins_server.rest_url}/monitoring/prometheus/metrics").read().decode()
    assert "tfpipe_serve_requests_total" in text
    assert "request_log" not in text
    assert not [t for t in threading.enumerate() if t.name == "request-log"]
