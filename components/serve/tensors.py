"""Tensors in TF Serving's wire formats: REST JSON and `TensorProto`s with typed fields.

REST (https://www.tensorflow.org/tfx/serving/api_rest): `predict` takes rows
(`instances`: a list with one value, or one `{input: value}` object, per
example) or columns (`inputs`: a value, or `{input: value}`), and answers
`predictions` (rows) or `outputs` (columns) in kind. Binary strings travel as
`{"b64": "..."}`. `classify` and `regress` take `examples` (feature objects)
and an optional `context` merged into each, and answer `results`.

gRPC: requests may carry `tensor_content` or typed fields; answers fill the
typed fields (`float_val`, `int64_val`, `string_val`, ...) as TF Serving does,
since some clients read nothing else.

Every check names the input and what it expected; no input raises anything
but `RequestError`.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from components.common.errors import TfpipeError


class RequestError(TfpipeError):
    """A request that cannot be served as sent: HTTP 400, gRPC INVALID_ARGUMENT."""


def predict_inputs(body: dict, specs: dict[str, tf.TensorSpec]) -> tuple[dict[str, np.ndarray], bool]:
    """(inputs by name, whether the request was in row format) from a REST predict body."""
    if not isinstance(body, dict):
        raise RequestError("request body: expected a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("request body: expected exactly one of 'instances' (rows) or 'inputs' (columns)")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("instances: expected a non-empty list")
        if all(isinstance(r, dict) and not _is_b64(r) for r in rows):
            for i, r in enumerate(rows):
                _check_names(r, specs, f"instances[{i}]")
            columns = {name: [r[name] for r in rows] for name in specs}
        elif len(specs) == 1:
            columns = {next(iter(specs)): rows}
        else:
            raise RequestError(f"instances: expected objects with the inputs {sorted(specs)}")
        row_format = True
    else:
        given = body["inputs"]
        if isinstance(given, dict) and not _is_b64(given):
            columns = given
        elif len(specs) == 1:
            columns = {next(iter(specs)): given}
        else:
            raise RequestError(f"inputs: expected an object with the inputs {sorted(specs)}")
        _check_names(columns, specs, "inputs")
        row_format = False
    arrays = {name: from_json(columns[name], specs[name], name) for name in specs}
    _check_batch(arrays)
    return arrays, row_format


def _is_b64(value) -> bool:
    """`{"b64": "..."}`: one binary value, not an object of named inputs."""
    return isinstance(value, dict) and set(value) == {"b64"}


def _check_names(given: dict, specs: dict, where: str) -> None:
    missing, unknown = sorted(set(specs) - set(given)), sorted(set(given) - set(specs))
    if missing or unknown:
        raise RequestError(f"{where}: " + "; ".join(
            part for part in (f"missing inputs {missing}" if missing else "",
                              f"unknown inputs {unknown}" if unknown else "") if part) +
            f" (the signature takes {sorted(specs)})")


def _check_batch(arrays: dict[str, np.ndarray]) -> None:
    sizes = {name: a.shape[0] if a.ndim else None for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(f"inputs: every input needs the same batch size, got {sizes}")


def from_json(value, spec: tf.TensorSpec, name: str) -> np.ndarray:
    if spec.dtype == tf.string:
        array = np.array(_strings(value, name), dtype=object)
    else:
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError):
            raise RequestError(f"input {name!r}: ragged values; expected shape {_shape(spec)}") from None
        if raw.dtype == object or raw.dtype.kind in "USV":
            raise RequestError(f"input {name!r}: expected {spec.dtype.name} values, got {_sample(value)}")
        if spec.dtype.is_integer and raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
            raise RequestError(f"input {name!r}: expected {spec.dtype.name} values, got fractions")
        array = raw.astype(spec.dtype.as_numpy_dtype)
    return check_shape(array, spec, name)


def check_shape(array: np.ndarray, spec: tf.TensorSpec, name: str) -> np.ndarray:
    expected = spec.shape
    if expected.rank is not None and (array.ndim != expected.rank or any(
            d is not None and d != a for d, a in zip(expected.as_list(), array.shape))):
        raise RequestError(f"input {name!r}: shape {list(array.shape)} does not fit {_shape(spec)} "
                           "(the first dimension is the batch)")
    return array


def _shape(spec: tf.TensorSpec) -> str:
    return str([-1 if d is None else d for d in spec.shape.as_list()]) if spec.shape.rank is not None else "any"


def _sample(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _strings(value, name: str):
    """Nested lists of strings; `{"b64": ...}` decoded to bytes, text encoded as UTF-8."""
    if isinstance(value, list):
        return [_strings(v, name) for v in value]
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise RequestError(f"input {name!r}: 'b64' is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise RequestError(f"input {name!r}: expected strings (or {{\"b64\": ...}}), got {_sample(value)}")


def to_json(array: np.ndarray):
    """Numbers as JSON numbers; strings as text when they are UTF-8, else `{"b64": ...}`."""
    if array.dtype == object or array.dtype.kind == "S":
        return _json_strings(array.tolist())
    return array.tolist()


def _json_strings(value):
    if isinstance(value, list):
        return [_json_strings(v) for v in value]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}


def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": to_json(next(iter(outputs.values())))}
        return {"outputs": {k: to_json(v) for k, v in outputs.items()}}
    if len(outputs) == 1:
        return {"predictions": to_json(next(iter(outputs.values())))}
    columns = {k: to_json(v) for k, v in outputs.items()}
    rows = len(next(iter(columns.values())))
    return {"predictions": [{k: column[i] for k, column in columns.items()} for i in range(rows)]}


def examples_from_json(body: dict) -> list[bytes]:
    """Serialized `tf.train.Example`s from a REST classify / regress body (`examples`, optional `context`)."""
    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) or not body["examples"]:
        raise RequestError("request body: expected 'examples', a non-empty list of feature objects")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise RequestError("context: expected an object of features")
    serialized = []
    for i, example in enumerate(body["examples"]):
        if not isinstance(example, dict):
            raise RequestError(f"examples[{i}]: expected an object of features")
        features = {name: _feature(value, f"examples[{i}].{name}") for name, value in {**context, **example}.items()}
        serialized.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return serialized


def _feature(value, where: str) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, bool) for v in values) or not values:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if all(isinstance(v, (str, dict)) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=_strings(values, where)))
    raise RequestError(f"{where}: expected numbers or strings, got {_sample(value)}")


_TYPED = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
}


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto with the typed value fields filled, as TF Serving answers."""
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d)
                                                   for d in array.shape])
    if array.dtype == object or array.dtype.kind == "S":
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape,
                                      string_val=[v.encode() if isinstance(v, str) else bytes(v)
                                                  for v in array.reshape(-1)])
    dtype, field = _TYPED[array.dtype]
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape)
    getattr(proto, field).extend(array.reshape(-1).tolist())
    return proto


def from_proto(proto: tensor_pb2.TensorProto, spec: tf.TensorSpec, name: str) -> np.ndarray:
    if proto.dtype != spec.dtype.as_datatype_enum:
        raise RequestError(f"input {name!r}: expected {spec.dtype.name}, got "
                           f"{tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'no dtype'}")
    try:
        array = tf.make_ndarray(proto)
    except (ValueError, TypeError) as e:
        raise RequestError(f"input {name!r}: unreadable tensor ({e})") from None
    return check_shape(array, spec, name)
