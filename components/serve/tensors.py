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
import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from components.serve import values as values_lib
from components.serve.errors import RequestError
from components.serve.models import Signature


def predict_inputs(body: dict, signature: Signature, allow_non_finite: bool) -> tuple[dict[str, np.ndarray], bool]:
    """(inputs by name, whether the request was in row format) from a REST predict body.

    An input left out, or a `null` in place of one value, reads as the signature's default for it (the schema's
    missing value); without one it is refused.
    """
    specs, defaults = signature.inputs, signature.defaults
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
                _check_names(r, specs, defaults, f"instances[{i}]")
            columns = {name: [r.get(name) for r in rows] for name in specs}
        elif len(specs) == 1:
            columns = {next(iter(specs)): rows}
        else:
            raise RequestError(f"instances: expected objects with the inputs {sorted(specs)}")
        row_format = True
    else:
        given = body["inputs"]
        if isinstance(given, dict) and not _is_b64(given):
            _check_names(given, specs, defaults, "inputs")
            columns = {**given, **_left_out(given, specs)}
        elif len(specs) == 1:
            columns = {next(iter(specs)): given}
        else:
            raise RequestError(f"inputs: expected an object with the inputs {sorted(specs)}")
        row_format = False
    arrays = {name: lists_from_json(columns[name], specs[name], name, signature.lists[name], allow_non_finite)
              if name in signature.lists else
              from_json(columns[name], specs[name], name, defaults.get(name, NO_DEFAULT), allow_non_finite)
              for name in specs}
    _check_batch(arrays)
    return arrays, row_format


def _is_b64(value) -> bool:
    """`{"b64": "..."}`: one binary value, not an object of named inputs."""
    return isinstance(value, dict) and set(value) == {"b64"}


def _check_names(given: dict, specs: dict, defaults: dict, where: str) -> None:
    missing, unknown = sorted(set(specs) - set(given) - set(defaults)), sorted(set(given) - set(specs))
    if missing or unknown:
        raise RequestError(f"{where}: " + "; ".join(
            part for part in (f"missing inputs {missing}" if missing else "",
                              f"unknown inputs {unknown}" if unknown else "") if part) +
            f" (the signature takes {sorted(specs)}" + (f"; {sorted(defaults)} may be left out)" if defaults else ")"))


def _left_out(given: dict, specs: dict) -> dict[str, list]:
    """Columns of nulls, as long as the given columns, for the inputs a columnar request left out."""
    absent = [name for name in specs if name not in given]
    sizes = {len(v) for v in given.values() if isinstance(v, list)}
    if absent and len(sizes) != 1:
        raise RequestError(f"inputs: {absent} left out, and the given inputs do not say the batch size "
                           "(expected lists of one length)")
    return {name: [None] * next(iter(sizes)) for name in absent}


def _check_batch(arrays: dict[str, np.ndarray]) -> None:
    sizes = {name: a.shape[0] if a.ndim else None for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(f"inputs: every input needs the same batch size, got {sizes}")


NO_DEFAULT = object()
CHUNK_ROWS = 4096  # rows converted per numpy call: no single call holds the interpreter for long


def from_json(value, spec: tf.TensorSpec, name: str, default=NO_DEFAULT, allow_non_finite: bool = False) -> np.ndarray:
    """One input from its JSON value: nulls replaced by the default, nesting, shape and every value checked."""
    if default is not NO_DEFAULT and isinstance(value, list) and any(v is None for v in value):
        value = [default if v is None else v for v in value]
    rank = spec.shape.rank
    if spec.dtype == tf.string:
        array = np.array(_strings(value, name, rank if rank is not None else 64, _shape(spec)), dtype=object)
        return check_shape(array, spec, name)
    if rank is not None and _nesting(value, rank) > rank:
        raise RequestError(f"input {name!r}: nested deeper than its shape {_shape(spec)} "
                           "(the first dimension is the batch)")
    try:
        if isinstance(value, list) and len(value) > CHUNK_ROWS:
            raw = np.concatenate([np.asarray(value[i:i + CHUNK_ROWS]) for i in range(0, len(value), CHUNK_ROWS)])
        else:
            raw = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise RequestError(f"input {name!r}: ragged or mixed values; expected {spec.dtype.name} values of shape "
                           f"{_shape(spec)}") from None
    check_shape(raw, spec, name)
    return values_lib.cast(raw, spec.dtype.as_numpy_dtype, name, allow_non_finite)


def lists_from_json(value, spec: tf.TensorSpec, name: str, padding, allow_non_finite: bool = False) -> np.ndarray:
    """A list input from its JSON value, a list of values per example (`null`: an empty one), as the
    `[batch, longest]` tensor the signature takes: each value checked as `from_json` checks one, then every row
    padded out to the longest with `padding`."""
    if not isinstance(value, list):
        raise RequestError(f"input {name!r}: expected a list of values for each example, got {_sample(value)}")
    rows = [[] if row is None else row for row in value]
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise RequestError(f"input {name!r}: example {i}: expected a list of values, got {_sample(row)}")
    flat = from_json([v for row in rows for v in row], tf.TensorSpec([None], spec.dtype), name,
                     allow_non_finite=allow_non_finite)
    return padded(flat, np.fromiter((len(row) for row in rows), np.int64, len(rows)), padding)


def padded(values: np.ndarray, lengths: np.ndarray, padding) -> np.ndarray:
    """Rows of a list, given as all their values in order and each row's length, as the `[batch, longest]`
    array a signature takes, shorter rows padded with `padding` (`schema.LIST_PADDING` of the values' type)."""
    out = np.full((len(lengths), int(lengths.max(initial=0))), padding, dtype=values.dtype)
    out[np.arange(out.shape[1]) < lengths[:, None]] = values
    return out


def _nesting(value, limit: int) -> int:
    """How deep `value` nests along its first elements, looking no deeper than `limit` + 1."""
    depth = 0
    while depth <= limit:
        if isinstance(value, np.ndarray):
            return depth + value.ndim
        if not isinstance(value, list) or not value:
            return depth + isinstance(value, list)
        value, depth = value[0], depth + 1
    return depth


def check_shape(array: np.ndarray, spec: tf.TensorSpec, name: str) -> np.ndarray:
    expected = spec.shape
    if expected.rank is not None and (array.ndim != expected.rank or any(
            d is not None and d != a for d, a in zip(expected.as_list(), array.shape, strict=True))):
        raise RequestError(f"input {name!r}: shape {list(array.shape)} does not fit {_shape(spec)} "
                           "(the first dimension is the batch)")
    return array


def _shape(spec: tf.TensorSpec) -> str:
    return str([-1 if d is None else d for d in spec.shape.as_list()]) if spec.shape.rank is not None else "any"


def _sample(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _strings(value, name: str, depth: int, shape: str):
    """Nested lists of strings, no deeper than `depth`; `{"b64": ...}` decoded to bytes, text encoded as UTF-8."""
    if isinstance(value, list):
        if depth <= 0:
            raise RequestError(f"input {name!r}: nested deeper than its shape {shape}")
        return [_strings(v, name, depth - 1, shape) for v in value]
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


def examples_from_json(body: dict, allow_non_finite: bool) -> list[bytes]:
    """Serialized `tf.train.Example`s from a REST classify / regress body (`examples`, optional `context`).

    A `null` feature, or an empty list, is written as no value, as ingest writes a missing cell or an empty
    list, so the model's example parsing reads it as the schema's missing value (or an empty list) whatever
    its type.
    """
    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) or not body["examples"]:
        raise RequestError("request body: expected 'examples', a non-empty list of feature objects")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise RequestError("context: expected an object of features")
    serialized = []
    for i, example in enumerate(body["examples"]):
        if not isinstance(example, dict):
            raise RequestError(f"examples[{i}]: expected an object of features")
        features = {name: _feature(value, f"examples[{i}].{name}", allow_non_finite)
                    for name, value in {**context, **example}.items() if value is not None and value != []}
        serialized.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return serialized


def _feature(value, where: str, allow_non_finite: bool) -> tf.train.Feature:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, bool) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        checked = values_lib.cast(np.asarray(values), np.dtype(np.int64), where, allow_non_finite)
        return tf.train.Feature(int64_list=tf.train.Int64List(value=checked.tolist()))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        checked = values_lib.cast(np.asarray(values, dtype=object), np.dtype(np.float32), where, allow_non_finite)
        return tf.train.Feature(float_list=tf.train.FloatList(value=checked.tolist()))
    if all(isinstance(v, (str, dict)) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=_strings(values, where, 1, "[values]")))
    raise RequestError(f"{where}: expected numbers or strings, got {_sample(value)}")


_TYPED = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
}


def to_proto(array: np.ndarray, proto: tensor_pb2.TensorProto | None = None) -> tensor_pb2.TensorProto:
    """A TensorProto with the typed value fields filled, as TF Serving answers; filled in place when `proto` (a
    response's map entry) is given. The values go in with one call, never one at a time."""
    proto = tensor_pb2.TensorProto() if proto is None else proto
    proto.tensor_shape.dim.extend([tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape])
    values = array.reshape(-1).tolist()
    if array.dtype == object or array.dtype.kind == "S":
        proto.dtype = types_pb2.DT_STRING
        try:
            proto.string_val.extend(values)  # what a signature answers: bytes
        except TypeError:  # text among them
            del proto.string_val[:]
            proto.string_val.extend([v.encode() if isinstance(v, str) else bytes(v) for v in values])
        return proto
    proto.dtype, field = _TYPED[array.dtype]
    getattr(proto, field).extend(values)
    return proto


# The typed field a request's TensorProto carries each dtype's values in, when it has no tensor_content.
_FIELDS = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT64: "int64_val",
           types_pb2.DT_INT32: "int_val", types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val",
           types_pb2.DT_UINT8: "int_val", types_pb2.DT_UINT16: "int_val", types_pb2.DT_BOOL: "bool_val",
           types_pb2.DT_STRING: "string_val", types_pb2.DT_HALF: "half_val", types_pb2.DT_UINT32: "uint32_val",
           types_pb2.DT_UINT64: "uint64_val"}


def from_proto(proto: tensor_pb2.TensorProto, spec: tf.TensorSpec, name: str, allow_non_finite: bool,
               max_bytes: int, padded: bool = False) -> np.ndarray:
    """One input from its TensorProto, checked as `from_json` checks JSON: shape, count, range, finiteness.
    A `padded` list of floats holds NaN where a row ends (`schema.LIST_PADDING`); only infinities are refused.

    The shape is checked against the values given before anything is allocated: a proto may declare any
    shape, and TensorFlow's own conversion pads a short list of values out to it.
    """
    if proto.dtype != spec.dtype.as_datatype_enum:
        raise RequestError(f"input {name!r}: expected {spec.dtype.name}, got "
                           f"{tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'no dtype'}")
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise RequestError(f"input {name!r}: tensor_shape {dims}: expected known dimensions >= 0")
    count, itemsize = math.prod(dims), max(spec.dtype.size, 1)
    if count * itemsize > max_bytes:
        raise RequestError(f"input {name!r}: tensor_shape {dims} holds {count:,} values, more than a request of "
                           f"{max_bytes:,} bytes may carry")
    field = _FIELDS.get(proto.dtype)
    if proto.tensor_content:
        if len(proto.tensor_content) != count * itemsize:
            raise RequestError(f"input {name!r}: tensor_content of {len(proto.tensor_content):,} bytes for "
                               f"tensor_shape {dims} ({count:,} values of {itemsize} bytes)")
    elif field is not None:
        given = getattr(proto, field)
        if len(given) > count:
            raise RequestError(f"input {name!r}: {len(given):,} values for tensor_shape {dims} ({count:,})")
        if field == "int_val" and given:  # int32 on the wire; uint8, int8, ... would wrap
            values_lib.cast(np.asarray(given, dtype=np.int64), spec.dtype.as_numpy_dtype, name, allow_non_finite)
    try:
        array = _ndarray(proto, dims, count, field, spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise RequestError(f"input {name!r}: unreadable tensor ({e})") from None
    check_shape(array, spec, name)
    if array.dtype.kind == "f":
        values_lib.cast(array[~np.isnan(array)] if padded else array, array.dtype, name, allow_non_finite)
    return array


# Typed fields numpy reads whole; the rest (half_val's bit patterns, ...) take TensorFlow's own conversion.
_WHOLE = {"float_val", "double_val", "int64_val", "int_val", "bool_val", "uint32_val", "uint64_val"}


def _ndarray(proto: tensor_pb2.TensorProto, dims: list[int], count: int, field: str | None,
             dtype: np.dtype) -> np.ndarray:
    """The proto's values as `tf.make_ndarray` reads them (fewer values than the shape holds: the last one
    repeated; none: zeros), each field converted by numpy in one call. The raw `tensor_content` is not copied:
    the array is a read-only view of the request's bytes."""
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype).reshape(dims)
    if field == "string_val" and len(proto.string_val) == count:
        return np.array(list(proto.string_val) if count else [], dtype=object).reshape(dims)
    if field not in _WHOLE:
        return tf.make_ndarray(proto)
    values = np.asarray(getattr(proto, field), dtype=dtype)
    if values.size == count:
        return values.reshape(dims)
    if not values.size:
        return np.zeros(dims, dtype)
    return np.pad(values, (0, count - values.size), "edge").reshape(dims)
