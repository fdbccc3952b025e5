"""The request log's records in the protocol buffer wire format, encoded directly.

A one-image predict built as a `PredictionLog` with the protobuf runtime
costs about 60 us (a message per tensor, shape and dimension, then copies
into their parents); at sampling rate 1.0 that was a tenth of the server's
throughput on 2 cores. The wire format is a concatenation of tagged fields,
so a record is bytes joined in a few microseconds: a tensor's header (dtype
and shape) is encoded once per dtype and shape, its values are numpy's raw
bytes, and a request or answer that is already a message is its own
serialization. Field numbers are read from TF Serving's and TensorFlow's
descriptors, not written here; the tests parse every record with the protos.
"""

from __future__ import annotations

import functools
import math
import struct

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    logging_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
)
from tensorflow_serving.config import logging_config_pb2

LENGTH_DELIMITED, FIXED64, VARINT = 2, 1, 0
_DTYPES = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
           np.dtype(np.int64): types_pb2.DT_INT64, np.dtype(np.int32): types_pb2.DT_INT32,
           np.dtype(np.uint8): types_pb2.DT_UINT8, np.dtype(np.bool_): types_pb2.DT_BOOL}


def number(message, name: str) -> int:
    return message.DESCRIPTOR.fields_by_name[name].number


# PredictionLog and the logs in it
LOG_METADATA, PREDICT_LOG = number(prediction_log_pb2.PredictionLog, "log_metadata"), \
    number(prediction_log_pb2.PredictionLog, "predict_log")
CLASSIFY_LOG, REGRESS_LOG = number(prediction_log_pb2.PredictionLog, "classify_log"), \
    number(prediction_log_pb2.PredictionLog, "regress_log")
LOG_REQUEST, LOG_RESPONSE = number(prediction_log_pb2.PredictLog, "request"), \
    number(prediction_log_pb2.PredictLog, "response")
# PredictRequest / PredictResponse (classify and regress requests and answers number model_spec alike)
REQUEST_SPEC, INPUTS = number(predict_pb2.PredictRequest, "model_spec"), number(predict_pb2.PredictRequest, "inputs")
RESPONSE_SPEC, OUTPUTS = number(predict_pb2.PredictResponse, "model_spec"), \
    number(predict_pb2.PredictResponse, "outputs")
MAP_KEY, MAP_VALUE = 1, 2  # every protobuf map entry
# ClassificationRequest / RegressionRequest's examples, and their answers' result
INPUT, RESULT = number(classification_pb2.ClassificationRequest, "input"), \
    number(classification_pb2.ClassificationResponse, "result")
EXAMPLE_LIST, EXAMPLES = number(input_pb2.Input, "example_list"), number(input_pb2.ExampleList, "examples")
# Example.features, Features.feature (a map), Feature.bytes_list, BytesList.value
FEATURES, FEATURE = number(example_pb2.Example, "features"), number(feature_pb2.Features, "feature")
BYTES_LIST, BYTES = number(feature_pb2.Feature, "bytes_list"), number(feature_pb2.BytesList, "value")
# TensorProto
DTYPE, SHAPE = number(tensor_pb2.TensorProto, "dtype"), number(tensor_pb2.TensorProto, "tensor_shape")
CONTENT, STRINGS = number(tensor_pb2.TensorProto, "tensor_content"), number(tensor_pb2.TensorProto, "string_val")
DIM, DIM_SIZE = 2, 1  # TensorShapeProto.dim, Dim.size
# LogMetadata
METADATA_SPEC, SAMPLING = number(logging_pb2.LogMetadata, "model_spec"), \
    number(logging_pb2.LogMetadata, "sampling_config")
TIMESTAMP, RATE = number(logging_pb2.LogMetadata, "timestamp_secs"), \
    number(logging_config_pb2.SamplingConfig, "sampling_rate")


def varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]  # most tags and lengths: one byte, looked up
_TAGS = [varint(n << 3 | LENGTH_DELIMITED) for n in range(32)]


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a message, bytes or a string."""
    size = len(payload)
    return _TAGS[number] + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + payload


@functools.lru_cache(maxsize=256)
def _tensor_header(dtype: int, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(field(DIM, varint(DIM_SIZE << 3 | VARINT) + varint(d)) for d in shape)
    return varint(DTYPE << 3 | VARINT) + varint(dtype) + field(SHAPE, dims)


def tensor(array: np.ndarray) -> bytes:
    """A TensorProto: numbers as raw bytes (`tensor_content`, as `tf.make_tensor_proto` writes them), strings
    as `string_val`."""
    if array.dtype == object or array.dtype.kind == "S":
        header = _tensor_header(types_pb2.DT_STRING, array.shape)
        return header + b"".join([field(STRINGS, v.encode() if isinstance(v, str) else bytes(v))
                                  for v in array.reshape(-1).tolist()])
    return _tensor_header(_DTYPES[array.dtype], array.shape) + field(CONTENT, array.tobytes())


def tensors(number: int, arrays: dict[str, np.ndarray]) -> bytes:
    """A map<string, TensorProto> field. An entry of numbers is its cached framing and numpy's bytes: every
    length in it follows from the name, dtype and shape."""
    return b"".join([_numbers_entry(number, name, a.dtype, a.shape) + a.tobytes() if a.dtype in _DTYPES else
                     field(number, field(MAP_KEY, name.encode()) + field(MAP_VALUE, tensor(a)))
                     for name, a in arrays.items()])


@functools.lru_cache(maxsize=1024)
def _numbers_entry(number: int, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A map entry of numbers up to their bytes, which follow it."""
    size = math.prod(shape) * dtype.itemsize
    header = _tensor_header(_DTYPES[dtype], shape) + _TAGS[CONTENT] + varint(size)
    entry = field(MAP_KEY, name.encode()) + _TAGS[MAP_VALUE] + varint(len(header) + size) + header
    return _TAGS[number] + varint(len(entry) + size) + entry


def with_feature(example: bytes, name: str, value: str) -> bytes:
    """A serialized Example with the string feature `name` set to `value`: a map entry appended to its features,
    which a parser merges in (the last entry of a name wins)."""
    feature = field(BYTES_LIST, field(BYTES, value.encode()))
    return example + field(FEATURES, field(FEATURE, field(MAP_KEY, name.encode()) + field(MAP_VALUE, feature)))


@functools.lru_cache(maxsize=256)
def model_spec(name: str, version: int | None, label: str | None, signature: str) -> bytes:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature)
    if version is not None:
        spec.version.value = version
    elif label:
        spec.version_label = label
    return spec.SerializeToString()


@functools.lru_cache(maxsize=256)
def metadata(spec: bytes, sampling_rate: float, timestamp_secs: int) -> bytes:
    """The LogMetadata field of a PredictionLog (the same for every record of a second)."""
    sampling = varint(RATE << 3 | FIXED64) + struct.pack("<d", sampling_rate)
    return field(LOG_METADATA, field(METADATA_SPEC, spec) + field(SAMPLING, sampling) +
                 varint(TIMESTAMP << 3 | VARINT) + varint(timestamp_secs))


def log(kind: int, request: bytes, response: bytes) -> bytes:
    """A PredictionLog's predict_log, classify_log or regress_log (`kind`) of a request and its answer."""
    return field(kind, field(LOG_REQUEST, request) + field(LOG_RESPONSE, response))
