"""TF Serving's REST API against the real server on 127.0.0.1, compared with the SavedModel run in-process."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

from components.common import reader
from components.common.schema import Schema
from components.serve import rest
from components.serve.client import RestClient, ServeError

FEATURES = ["bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm", "island", "sex", "year"]


def rows_of(penguins_examples, count=8) -> list[dict]:
    """The first test examples as REST instances: {feature: plain JSON value}."""
    schema = Schema.read(penguins_examples)
    spec = {k: v for k, v in schema.parse_spec().items() if k != schema.label}
    files = reader.files_of(penguins_examples, "test")
    batch = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(count)))
    parsed = tf.io.parse_example(batch, spec)
    return [{k: (v[i].numpy().decode() if v.dtype == tf.string else v[i].numpy().item()) for k, v in parsed.items()}
            for i in range(count)]


def reference(home, rows):
    """What the SavedModel itself answers for these rows."""
    signature = tf.saved_model.load(str(home / "1")).signatures["serving_default"]
    columns = {k: tf.constant([r[k] for r in rows], dtype=signature.structured_input_signature[1][k].dtype)
               for k in rows[0]}
    return {k: v.numpy() for k, v in signature(**columns).items()}


@pytest.fixture
def client(penguins_server):
    connection = RestClient(penguins_server.rest_url, "penguins")
    yield connection
    connection.close()


def test_predict_rows_and_columns_match_the_saved_model(client, penguins_home, penguins_examples):
    rows = rows_of(penguins_examples)
    expected = reference(penguins_home, rows)
    predictions = client.predict(instances=rows)["predictions"]
    assert len(predictions) == len(rows)
    assert set(predictions[0]) == {"probabilities", "class_ids", "classes"}
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected["probabilities"], atol=1e-6)
    assert [p["classes"] for p in predictions] == [c.decode() for c in expected["classes"]]
    columns = client.predict(inputs={k: [r[k] for r in rows] for k in FEATURES})["outputs"]
    np.testing.assert_allclose(columns["probabilities"], expected["probabilities"], atol=1e-6)
    as_b64 = [{**r, "island": {"b64": base64.b64encode(r["island"].encode()).decode()}} for r in rows]
    np.testing.assert_allclose([p["probabilities"] for p in client.predict(instances=as_b64)["predictions"]],
                               expected["probabilities"], atol=1e-6)
    assert client.predict(instances=rows, version=1)["predictions"][0]["classes"] == predictions[0]["classes"]


def test_classify_with_context(client, penguins_home, penguins_examples):
    rows = [{**r, "year": 2008} for r in rows_of(penguins_examples, 3)]
    expected = reference(penguins_home, rows)
    examples = [{k: v for k, v in r.items() if k != "year"} for r in rows]
    results = client.classify(examples, context={"year": 2008})  # the context is merged into every example
    assert [[label for label, _ in row] for row in results] == [["Adelie", "Chinstrap", "Gentoo"]] * 3
    np.testing.assert_allclose([[s for _, s in row] for row in results], expected["probabilities"], atol=1e-6)


def test_status_and_metadata_in_tf_servings_shape(client):
    assert client.status() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.status(version=1) == client.status()
    metadata = client.metadata()
    assert metadata["model_spec"] == {"name": "penguins", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert signatures["classification"]["method_name"] == "tensorflow/serving/classify"
    default = signatures["serving_default"]
    assert set(default["inputs"]) == set(FEATURES)
    assert default["inputs"]["island"] == {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1"}]},
                                           "name": "serving_default_island:0"}
    assert set(default["outputs"]) == {"probabilities", "class_ids", "classes"}


VALID = {"bill_depth_mm": 17.0, "bill_length_mm": 40.0, "body_mass_g": 4000, "flipper_length_mm": 190,
         "island": "Dream", "sex": "male", "year": 2008}


def rows(**changes) -> bytes:
    return json.dumps({"instances": [{**VALID, **changes}]}).encode()


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b'{"instances": []}', "instances: expected a non-empty list"),
    (b'{"instances": [1], "inputs": [1]}', "exactly one of 'instances'"),
    (b'{"instances": [{"island": "Dream"}]}', "missing inputs ['bill_depth_mm'"),
    (rows(beak=1), "unknown inputs ['beak']"),
    (rows(island=7), "input 'island': expected strings"),
    (rows(bill_depth_mm="x"), "input 'bill_depth_mm': expected float32 values, got 'x'"),
    (rows(bill_depth_mm=[1.0, 2.0]), "input 'bill_depth_mm': nested deeper than its shape [-1]"),
    (rows(year=2008.5), "input 'year': 2008.5 at [0]; expected int64 values (integers)"),
    (rows(island={"b64": "!!"}), "input 'island': 'b64' is not valid base64"),
    (json.dumps({"inputs": {**{k: [v] for k, v in VALID.items()}, "year": [2008, 2009]}}).encode(),
     "same batch size"),
    (b'[1, 2]', "expected a JSON object"),
])
def test_malformed_predict_requests_get_400_naming_the_field(client, body, fragment):
    with pytest.raises(ServeError) as error:
        client.request("POST", "/v1/models/penguins:predict", body)
    assert error.value.code == 400
    assert fragment in error.value.message


def test_nan_and_infinity_are_refused_unless_allowed_then_travel_as_tf_serving_writes_them(client, penguins_home):
    body = json.dumps({"instances": [{**VALID, "bill_length_mm": float("nan")},
                                     {**VALID, "bill_depth_mm": float("inf")}]}).encode()
    assert b"NaN" in body
    assert b"Infinity" in body  # not standard JSON; TF Serving reads and writes them
    with pytest.raises(ServeError) as error:
        client.request("POST", "/v1/models/penguins:predict", body)
    # whichever input is checked first (the signature's order) names its value and row
    assert error.value.code == 400
    assert error.value.message.startswith((
        "input 'bill_length_mm': nan at [0]; expected float32 values, finite ones",
        "input 'bill_depth_mm': inf at [1]; expected float32 values, finite ones"))
    from components.serve.server import running
    from tests.components.serve.conftest import config

    with running(config(penguins_home, allow_non_finite=True)) as server:
        allowing = RestClient(server.rest_url, "penguins")
        predictions = allowing.request("POST", "/v1/models/penguins:predict", body)["predictions"]
        assert [len(p["probabilities"]) for p in predictions] == [3, 3]  # read, not refused as bad JSON
        allowing.close()
    assert rest._dumps({"outputs": [float("nan"), float("-inf"), 0.5]}) == b'{"outputs":[NaN,-Infinity,0.5]}'
    assert rest._dumps({"outputs": [0.25, "null"]}) == b'{"outputs":[0.25,"null"]}'


def test_not_found_and_wrong_api(client):
    for path, fragment in [("/v1/models/other:predict", "model 'other'"),
                           ("/v1/models/penguins/versions/9:predict", "Specific(penguins, 9)"),
                           ("/v1/models/penguins/labels/canary:predict", "label 'canary'")]:
        with pytest.raises(ServeError) as error:
            client.request("POST", path, b'{"instances": [1]}')
        assert error.value.code == 404
        assert fragment in error.value.message
    with pytest.raises(ServeError) as error:
        client.request("POST", "/v1/models/penguins:predict", b'{"signature_name": "nope", "instances": [1]}')
    assert error.value.code == 404
    assert "signature 'nope' not found" in error.value.message
    with pytest.raises(ServeError) as error:
        client.classify([{"island": "Dream"}], signature="serving_default")
    assert error.value.code == 400
    assert "needs a tensorflow/serving/classify signature: ['classification']" in \
        error.value.message
    with pytest.raises(ServeError) as error:
        client.request("GET", "/v1/models/penguins:predict")
    assert error.value.code == 405


def test_oversize_request_is_refused(penguins_home):
    from components.serve.server import running
    from tests.components.serve.conftest import config

    with running(config(penguins_home, max_request_bytes=4096)) as server:
        client = RestClient(server.rest_url, "penguins")
        with pytest.raises(ServeError) as error:
            client.request("POST", "/v1/models/penguins:predict", b'{"instances": [' + b"1," * 5000 + b"1]}")
        assert error.value.code == 413
        assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"  # still serving


def test_health_readiness_and_metrics(client):
    client.predict(instances=[VALID])
    assert client.request("GET", "/healthz") == {"status": "ok"}
    assert client.request("GET", "/readyz") == {"ready": True}
    client.connection.request("GET", "/monitoring/prometheus/metrics")
    text = client.connection.getresponse().read().decode()
    assert 'tfpipe_serve_requests_total{api="predict",code="200",protocol="rest"}' in text
    assert "tfpipe_serve_latency_seconds_bucket" in text
    assert "tfpipe_serve_batch_rows_bucket" in text
