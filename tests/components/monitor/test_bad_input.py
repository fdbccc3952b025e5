"""Monitor on what log folders really hold: files cut short, a budget that ate the oldest files, requests the
schema no longer fits, gaps without a request, nothing at all. Logs are real TFRecord files of PredictionLogs."""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import prediction_log_pb2

from components import monitor
from components.common.config import DriftThresholds, MonitorConfig, RequestLogConfig
from components.monitor import Findings, MonitorError
from components.serve import request_log
from components.serve.request_log import RequestLog
from tests.components.serve.test_rest import VALID

T0 = 1_800_000_000  # a window start for windows of 10 s
TENSORS = {"bill_depth_mm": np.float32, "bill_length_mm": np.float32, "body_mass_g": np.int64,
           "flipper_length_mm": np.int64, "island": object, "sex": object, "year": np.int64}


def predict(when: int, rows: int = 4, predicted: str = "Adelie", **tensors) -> prediction_log_pb2.PredictionLog:
    """A logged predict of `rows` copies of VALID (`tensors` replace or add inputs), all answered `predicted`."""
    record = prediction_log_pb2.PredictionLog()
    record.log_metadata.timestamp_secs = when
    record.log_metadata.model_spec.signature_name = "serving_default"
    inputs = {k: np.array([VALID[k]] * rows, dtype=t) for k, t in TENSORS.items()}
    for name, value in {**inputs, **tensors}.items():
        record.predict_log.request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    record.predict_log.response.outputs["classes"].CopyFrom(tf.make_tensor_proto(np.array([predicted] * rows,
                                                                                          dtype=object)))
    return record


def write(path, records) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())


def run(tmp_path, examples, **options):
    return monitor.run(MonitorConfig(window_seconds=10), str(tmp_path / "logs"), examples, str(tmp_path / "out"),
                       **options)


def test_a_file_cut_short_is_read_up_to_the_cut_and_named(tmp_path, penguins_examples, caplog):
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "a.tfrecord", [predict(T0 + i) for i in range(6)])
    whole = tmp_path / "logs" / "b.tfrecord"
    write(whole, [predict(T0 + 12 + i) for i in range(6)])
    data = whole.read_bytes()
    whole.write_bytes(data[:len(data) * 3 // 4])  # as a copy interrupted in the fifth record
    (tmp_path / "logs" / ".hidden").write_bytes(b"not a log")  # hidden and not a log being written: not read
    with caplog.at_level(logging.WARNING, logger="tfpipe.monitor"):
        result = run(tmp_path, penguins_examples)
    [damaged] = result.findings.damaged_files
    assert damaged.path.endswith("b.tfrecord")
    assert damaged.records == 4
    assert "b.tfrecord is damaged after 4 records" in caplog.text
    assert [w.requests for w in result.findings.windows] == [6, 4]
    assert result.findings.files == 2
    assert "b.tfrecord" in (tmp_path / "out" / "report.html").read_text()


def test_a_folder_whose_budget_filled_is_read_as_it_is(tmp_path, penguins_examples):
    log = RequestLog(RequestLogConfig(sampling_rate=1.0, dir=str(tmp_path / "logs"), max_file_bytes=4096,
                                      max_files=2), CollectorRegistry())
    inputs = {k: np.array([VALID[k]] * 4, dtype=t) for k, t in TENSORS.items()}
    outputs = {"classes": np.array([b"Adelie"] * 4, dtype=object)}
    for _ in range(40):
        log.offer(request_log.predict_arrays, ("penguins", None, None), "serving_default", 1, inputs, outputs)
    log.close()
    kept = len(list(tf.data.TFRecordDataset([str(p) for p in (tmp_path / "logs").iterdir()])))
    assert 0 < kept < 40
    result = monitor.run(MonitorConfig(), str(tmp_path / "logs"), penguins_examples, str(tmp_path / "out"))
    assert result.findings.requests == kept
    assert not result.findings.damaged_files
    assert [w.crossed("skew") for w in result.findings.windows] == [
        tuple(m for m in result.findings.windows[0].measurements if m.crossed)]


def test_requests_the_schema_no_longer_fits_are_counted_never_raised(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    unanswered = predict(T0)
    unanswered.predict_log.response.ClearField("outputs")  # as a request with an output_filter leaving it out
    examples_request = prediction_log_pb2.PredictionLog()
    examples_request.log_metadata.timestamp_secs = T0
    examples_request.predict_log.request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(
        np.array([b"\xff not an example"], dtype=object)))
    write(tmp_path / "logs" / "a.tfrecord", [
        predict(T0, wing_span=np.array([1.0] * 4, dtype=np.float32)),
        predict(T0, island=np.array([1.5] * 4, dtype=np.float32)),
        predict(T0, body_mass_g=np.full((4, 2), 4000, dtype=np.int64)),
        predict(T0, year=np.array([2008] * 3, dtype=np.int64)),
        unanswered,
        examples_request,
        predict(T0 + 1),
    ])
    [window] = run(tmp_path, penguins_examples).findings.windows
    found = {(a.kind, a.feature): a.requests for a in window.anomalies}
    assert found == {("unknown_feature", "wing_span"): 1, ("type_mismatch", "island"): 1,
                     ("shape_mismatch", "body_mass_g"): 1, ("batch_mismatch", ""): 1, ("unreadable", ""): 1,
                     ("no_prediction", "species"): 1}
    assert window.requests == 7
    assert window.rows == 4 * 5  # the requests of mismatched batches or bytes have none
    message = next(a.message for a in window.anomalies if a.kind == "type_mismatch")
    assert message == "'island': float32 values, expected string"
    assert "predictions (species)" in {m.subject for m in window.measurements}


def test_windows_without_requests_and_a_folder_without_any_are_said_plainly(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / ".requests-1.tfrecord.tmp").write_bytes(b"")  # a server that logged nothing yet
    write(tmp_path / "logs" / "empty.tfrecord", [])
    with pytest.raises(MonitorError, match=f"^{tmp_path / 'logs'}: not one request record in its 2 files; "
                                           "expected the server's request logs"):
        run(tmp_path, penguins_examples)
    assert not (tmp_path / "out").exists()

    write(tmp_path / "logs" / "a.tfrecord", [predict(T0), predict(T0 + 45)])
    result = run(tmp_path, penguins_examples, since=T0 + 50)
    assert result.findings.windows == ()
    assert not result.crossed
    assert result.findings.headline() == f"no requests in the window asked for in {tmp_path / 'logs'} (3 log " \
                                         "files, 1 unfinished (0 bytes torn off)): nothing to compare"
    assert "No request was logged in the time asked for." in (tmp_path / "out" / "report.html").read_text()
    first, gap, last = run(tmp_path, penguins_examples).findings.windows
    assert (gap.start, gap.end, gap.requests) == (T0 + 10, T0 + 40, 0)
    assert last.drift_against == first.start
    assert {m.kind for m in last.measurements} == {"skew", "drift"}
    assert "no requests in this window" in (tmp_path / "out" / "report.html").read_text()
    [only] = run(tmp_path, penguins_examples, since=T0 + 40).findings.windows
    assert only.start == T0 + 40
    assert only.drift_against is None


def test_findings_read_back_and_refuse_what_is_not_a_record(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "a.tfrecord", [predict(T0), predict(T0 + 15, predicted="Gentoo")])
    result = run(tmp_path, penguins_examples)
    text = (tmp_path / "out" / "findings.json").read_text()
    assert Findings.from_json(text) == result.findings
    written_before_lists = {**json.loads(text), "retrain_on": "never"}
    assert Findings.from_json(json.dumps(written_before_lists)) == result.findings
    with pytest.raises(MonitorError, match="findings.json: unknown kinds"):
        Findings.from_json(text.replace('"kind": "drift"', '"kind": "wobble"'))
    with pytest.raises(MonitorError, match="findings.json: not a monitor record"):
        Findings.from_json('{"windows": []}')


def test_bad_folders_and_thresholds_are_refused_naming_them(tmp_path, penguins_examples):
    with pytest.raises(MonitorError, match="no such folder of request logs"):
        run(tmp_path, penguins_examples)
    (tmp_path / "logs").mkdir()
    with pytest.raises(MonitorError, match="monitor.drift.features.beak: no such feature"):
        monitor.run(MonitorConfig(drift=DriftThresholds(features={"beak": 0.2})), str(tmp_path / "logs"),
                    penguins_examples, str(tmp_path / "out"))
    with pytest.raises(MonitorError, match="training examples: "):
        run(tmp_path, str(tmp_path))


def test_requests_of_another_model_are_refused_naming_both_sides(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    digits = prediction_log_pb2.PredictionLog()
    digits.log_metadata.timestamp_secs = T0
    digits.predict_log.request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 8, 8, 1), np.uint8)))
    digits.predict_log.response.outputs["classes"].CopyFrom(tf.make_tensor_proto(np.array([b"3", b"7"])))
    write(tmp_path / "logs" / "a.tfrecord", [digits] * 3)
    with pytest.raises(MonitorError) as refused:
        run(tmp_path, penguins_examples)
    assert str(refused.value) == (
        f"request logs {tmp_path / 'logs'} against training examples {penguins_examples}: the requests carry the "
        "features [image] and the training schema has [bill_depth_mm, bill_length_mm, body_mass_g, "
        "flipper_length_mm, island, sex, year]: none in common; the log is of another model, or the examples are")

    write(tmp_path / "logs" / "a.tfrecord", [predict(T0, predicted="3"), predict(T0 + 1, predicted="7")])
    with pytest.raises(MonitorError, match=r"the requests were answered with the classes \[3, 7\] and the model's "
                                           r"label 'species' has the classes \[Adelie, Chinstrap, Gentoo\]: none in "
                                           "common; the log is of another model"):
        run(tmp_path, penguins_examples)
    assert not (tmp_path / "out").exists()

    write(tmp_path / "logs" / "a.tfrecord", [predict(T0), predict(T0 + 1, predicted="Emperor")])  # one stray class
    [window] = run(tmp_path, penguins_examples).findings.windows
    assert [(a.kind, a.requests, a.message) for a in window.anomalies] == [
        ("unknown_class", 1, "predicted class 'Emperor' is none of the model's 3 classes")]


def test_an_unfinished_file_is_read_up_to_its_torn_tail_and_reported(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "requests-1.tfrecord", [predict(T0 + i) for i in range(3)])
    unfinished = tmp_path / "logs" / ".requests-2.tfrecord.tmp"
    write(unfinished, [predict(T0 + 3 + i) for i in range(5)])
    data = unfinished.read_bytes()
    unfinished.write_bytes(data[:len(data) - 40])  # the fifth record's write cut short by a SIGKILL
    result = run(tmp_path, penguins_examples)
    [file] = result.findings.unfinished_files
    assert (file.path, file.records, file.torn_bytes) == (str(unfinished), 4, len(data) // 5 - 40)
    assert result.findings.requests == 7
    assert result.findings.files == 2
    assert not result.findings.damaged_files
    assert "2 log files, 1 unfinished (" in result.findings.headline()
    assert Findings.from_json((tmp_path / "out" / "findings.json").read_text()) == result.findings
    assert ".requests-2.tfrecord.tmp" in (tmp_path / "out" / "report.html").read_text()


def test_a_window_too_long_is_refused_in_one_line(tmp_path, penguins_examples):
    (tmp_path / "logs").mkdir()
    with pytest.raises(MonitorError, match=r"^window: expected 1 to 3,153,600,000 seconds \(100 years\), got "
                                           r"8,639,999,999,999,999,999,913,600$"):
        run(tmp_path, penguins_examples, window=99999999999999999999 * 86400)
