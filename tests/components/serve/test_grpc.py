"""TF Serving's gRPC API through the tensorflow-serving-api stubs against the real server."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2

from components.common import reader
from components.serve.client import GrpcClient, ServeError
from tests.components.serve.test_rest import VALID, reference


@pytest.fixture
def client(penguins_server):
    stub = GrpcClient(penguins_server.grpc_target, "penguins")
    yield stub
    stub.close()


def columns(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows], dtype=object if isinstance(v, str) else
                        np.int64 if isinstance(v, int) else np.float32) for k, v in rows[0].items()}


def test_predict_fills_typed_fields(client, penguins_home):
    rows = [VALID, {**VALID, "island": "Biscoe", "flipper_length_mm": 225, "body_mass_g": 5600}]
    expected = reference(penguins_home, rows)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguins"
    for name, value in columns(rows).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))  # tensor_content, as many clients send
    response = client.predictions.Predict(request, timeout=30)
    probabilities = response.outputs["probabilities"]
    assert probabilities.float_val
    assert not probabilities.tensor_content
    assert [d.size for d in probabilities.tensor_shape.dim] == [2, 3]
    np.testing.assert_allclose(np.reshape(probabilities.float_val, (2, 3)), expected["probabilities"], atol=1e-6)
    assert list(response.outputs["classes"].string_val) == list(expected["classes"])
    assert list(response.outputs["class_ids"].int64_val) == expected["class_ids"].tolist()
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert client.predict(columns(rows))["class_ids"].tolist() == expected["class_ids"].tolist()


def test_classify_metadata_and_status(client, penguins_home, penguins_examples):
    files = reader.files_of(penguins_examples, "test")
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(4)]
    expected = tf.saved_model.load(str(penguins_home / "1")).signatures["classification"](
        inputs=tf.constant(serialized))["scores"].numpy()
    results = client.classify(serialized)
    assert [label for label, _ in results[0]] == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose([[s for _, s in row] for row in results], expected, atol=1e-6)
    signatures = client.metadata().signature_def
    assert signatures["classification"].method_name == "tensorflow/serving/classify"
    assert set(signatures["serving_default"].inputs) == set(VALID)
    [status] = client.status().model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


def test_errors_carry_tf_serving_codes(client):
    bad = columns([VALID])
    bad["year"] = bad["year"].astype(np.float32)
    for call, code, fragment in [
        (lambda: client.predict(bad), "INVALID_ARGUMENT", "input 'year': expected int64, got float32"),
        (lambda: client.predict({"island": np.array([b"Dream"], dtype=object)}), "INVALID_ARGUMENT", "missing"),
        (lambda: client.predict(columns([VALID]), version=7), "NOT_FOUND", "Specific(penguins, 7)"),
        (lambda: client.predict(columns([VALID]), signature="nope"), "NOT_FOUND", "signature 'nope'"),
        (lambda: client.regress([b""]), "NOT_FOUND", "signature 'regression' not found"),
        (lambda: client.classify([]), "INVALID_ARGUMENT", "input: no examples"),
    ]:
        with pytest.raises(ServeError) as error:
            call()
        assert error.value.code == code, error.value
        assert fragment in error.value.message, error.value
    other = GrpcClient(client.channel._channel.target().decode(), "other")
    with pytest.raises(ServeError, match="NOT_FOUND"):
        other.status()
    other.close()


def test_garbage_bytes_do_not_break_the_server(client):
    raw = client.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as error:
        raw(b"\xff\x00garbage", timeout=10)
    # grpcio itself answers a request it cannot decode, with UNKNOWN, before any handler runs.
    assert error.value.code() == grpc.StatusCode.UNKNOWN
    assert "Error parsing message" in error.value.details()
    assert client.status().model_version_status[0].version == 1
