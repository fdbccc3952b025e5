"""Inputs are checked against the signature before the model sees them, over REST and gRPC alike, and a
missing value reads as training reads one."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from components.common.schema import Schema
from components.serve.client import GrpcClient, RestClient, ServeError
from components.serve.server import running
from tests.components.serve.conftest import config
from tests.components.serve.test_grpc import columns
from tests.components.serve.test_rest import VALID, reference


def refused(call, code, fragment):
    with pytest.raises(ServeError) as error:
        call()
    assert error.value.code == code, error.value.message
    assert fragment in error.value.message


def predict(client, body):
    return client.request("POST", "/v1/models/penguins:predict", json.dumps(body).encode())


@pytest.fixture(scope="module")
def digits_server(digits_home):
    with running(config(digits_home)) as server:
        yield server


def test_uint8_pixels_out_of_range_are_refused_not_wrapped(digits_server):
    rest, grpc = RestClient(digits_server.rest_url, "digits"), GrpcClient(digits_server.grpc_target, "digits")
    image = np.zeros((8, 8, 1), np.int64)
    for value in (300, -1):
        bad = image.copy()
        bad[2, 3, 0] = value
        refused(lambda b=bad: rest.predict(instances=[{"image": b.tolist()}]), 400,
                f"input 'image': {value} at [0, 2, 3, 0]; expected uint8 values in [0, 255]")
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (1, 8, 8, 1)]), int_val=bad.reshape(-1))
        refused(lambda b=bad, p=proto: grpc.predict({"image": b}, proto=lambda _: p), "INVALID_ARGUMENT",
                f"input 'image': {value} at [{2 * 8 + 3}]; expected uint8 values in [0, 255]")
    assert len(rest.predict(instances=[{"image": image.tolist()}])["predictions"]) == 1
    rest.close()
    grpc.close()


def test_a_proto_declaring_more_values_than_a_request_carries_is_refused(digits_server):
    grpc = GrpcClient(digits_server.grpc_target, "digits")
    huge = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (1 << 30, 8, 8, 1)]), int_val=[1])
    refused(lambda: grpc.predict({"image": None}, proto=lambda _: huge), "INVALID_ARGUMENT",
            "input 'image': tensor_shape [1073741824, 8, 8, 1] holds 68,719,476,736 values, more than a request")
    grpc.close()


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"year": 2 ** 70}, "input 'year': 1180591620717411303424 at [0] is out of range; expected int64 values in "
                        "[-9223372036854775808"),
    ({"year": 2 ** 63}, "input 'year': 9223372036854775808 at [0]; expected int64 values in"),
    ({"year": -2 ** 63 - 1}, "input 'year': -9223372036854775809 at [0] is out of range; expected int64 values"),
    ({"bill_depth_mm": float("nan")}, "input 'bill_depth_mm': nan at [0]; expected float32 values, finite ones"),
    ({"bill_depth_mm": float("-inf")}, "input 'bill_depth_mm': -inf at [0]; expected float32 values, finite ones"),
    ({"bill_depth_mm": 1e308}, "input 'bill_depth_mm': 1e+308 at [0]; expected float32 values within +-3.403e+38"),
    ({"bill_depth_mm": True}, "input 'bill_depth_mm': expected float32 values, got booleans"),
    ({"bill_depth_mm": None}, "input 'bill_depth_mm': null at [0]; expected float32 values (a null reads as "
                              "missing only for"),
])
def test_values_a_cast_would_change_are_refused_naming_the_input(penguins_server, changes, fragment):
    client = RestClient(penguins_server.rest_url, "penguins")
    refused(lambda: predict(client, {"instances": [{**VALID, **changes}]}), 400, fragment)
    client.close()


def test_the_same_values_over_grpc_are_invalid_argument(penguins_server):
    client = GrpcClient(penguins_server.grpc_target, "penguins")
    for name, value, fragment in [("bill_depth_mm", np.float32("nan"), "nan at [0]; expected float32 values, finite"),
                                  ("bill_length_mm", np.float32("inf"), "inf at [0]; expected float32 values, finite")]:
        bad = columns([VALID])
        bad[name] = np.array([value], np.float32)
        refused(lambda b=bad: client.predict(b), "INVALID_ARGUMENT", f"input {name!r}: {fragment}")
    example = tf.train.Example()
    example.features.feature["bill_depth_mm"].float_list.value.append(float("nan"))
    refused(lambda: client.classify([example]), "INVALID_ARGUMENT", "input 'examples[0].bill_depth_mm': nan at [0]")
    client.close()


def test_json_nested_past_the_signature_is_a_400(penguins_server):
    client = RestClient(penguins_server.rest_url, "penguins")
    for name, value in (("bill_depth_mm", b"17.0"), ("island", b'"Dream"')):
        rest = json.dumps({k: v for k, v in VALID.items() if k != name})[1:-1].encode()
        body = b'{"instances": [{"%s": %s%s%s, %s}]}' % (name.encode(), b"[" * 1000, value, b"]" * 1000, rest)
        refused(lambda b=body: client.request("POST", "/v1/models/penguins:predict", b), 400,
                f"input {name!r}: nested deeper than its shape [-1]")
    too_deep = b'{"instances": ' + b"[" * 1100 + b"]" * 1100 + b"}"
    refused(lambda: client.request("POST", "/v1/models/penguins:predict", too_deep), 400,
            "request body: not valid JSON")
    client.close()


def test_classify_refuses_values_a_feature_cannot_hold(penguins_server):
    client = RestClient(penguins_server.rest_url, "penguins")
    refused(lambda: client.classify([{**VALID, "year": 2 ** 70}]), 400,
            "input 'examples[0].year': 1180591620717411303424 at [0] is out of range; expected int64 values")
    refused(lambda: client.classify([{**VALID, "bill_depth_mm": 1e39}]), 400,
            "input 'examples[0].bill_depth_mm': 1e+39 at [0]; expected float32 values within")
    client.close()


@pytest.fixture(scope="module")
def home_with_schema(penguins_home, penguins_examples):
    """The penguins version with its examples' schema, which export writes as `assets.extra/schema.json`."""
    assert Schema.read(str(penguins_home / "1" / "assets.extra")) == Schema.read(penguins_examples)
    return penguins_home


def test_missing_values_read_as_the_readers_parse_spec_reads_them(penguins_examples):
    """The defaults the server fills are the examples reader's parse-spec defaults, and both are the training
    mean of a number and "" for a category (worked out here from the data, not by the same code)."""
    import csv

    from components.data import write_penguins

    schema = Schema.read(penguins_examples)
    spec = schema.parse_spec()
    defaults = schema.serving_defaults()
    assert set(defaults) == {f.name for f in schema.inputs}  # no images among the penguins' features
    with open(write_penguins(Path(penguins_examples).parent / "again.csv")) as f:
        rows = list(csv.DictReader(f))
    for name, value in defaults.items():
        assert value == spec[name].default_value
        if schema.feature(name).type == "string":
            assert value == ""
        else:
            cells = [float(row[name]) for row in rows if row[name] not in ("", "NA")]
            mean = sum(cells) / len(cells)
            expected = round(mean) if schema.feature(name).type == "int" else mean  # an integer column's mean
            assert value == pytest.approx(expected, rel=1e-6)


def test_a_null_or_a_left_out_feature_reads_as_a_missing_training_value(home_with_schema, penguins_examples):
    schema = Schema.read(penguins_examples)
    loaded = tf.saved_model.load(str(home_with_schema / "1"))
    without = tf.train.Example()  # as ingest writes a row whose bill_depth_mm and island cells are empty
    for name, value in VALID.items():
        if name not in ("bill_depth_mm", "island"):
            kind = schema.feature(name).type
            field = {"float": "float_list", "int": "int64_list"}.get(kind, "bytes_list")
            getattr(without.features.feature[name], field).value.append(
                value.encode() if isinstance(value, str) else value)
    trained = loaded.signatures["predict_examples"](inputs=tf.constant([without.SerializeToString()]))
    trained = trained["probabilities"].numpy()
    filled = {**VALID, **{k: schema.feature(k).default_value for k in ("bill_depth_mm", "island")}}
    np.testing.assert_allclose(reference(home_with_schema, [filled])["probabilities"], trained, atol=1e-6)
    with running(config(home_with_schema)) as server:
        rest, grpc = RestClient(server.rest_url, "penguins"), GrpcClient(server.grpc_target, "penguins")
        left_out = {k: v for k, v in VALID.items() if k not in ("bill_depth_mm", "island")}
        answers = [
            predict(rest, {"instances": [{**VALID, "bill_depth_mm": None, "island": None}]})["predictions"][0],
            predict(rest, {"instances": [left_out]})["predictions"][0],
            {"probabilities": predict(rest, {"inputs": {k: [v] for k, v in left_out.items()}})["outputs"][
                "probabilities"][0]},
            {"probabilities": grpc.predict(columns([left_out]))["probabilities"][0]},
            {"probabilities": [score for _, score in rest.classify([{**VALID, "bill_depth_mm": None,
                                                                      "island": None}])[0]]},
        ]
        for answer in answers:
            np.testing.assert_allclose(answer["probabilities"], trained[0], atol=1e-6)
        refused(lambda: predict(rest, {"instances": [{"year": 2008}, {"year": 2009, "bill_depth_mm": "x"}]}),
                400, "input 'bill_depth_mm': expected float32 values")
        rest.close()
        grpc.close()
