"""TensorProtos read and written a field at a time by numpy, exactly as TensorFlow's own conversions read and
write them, and request-log tensors framed from cached headers that the protos parse back."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import predict_pb2

from components.serve import wire
from components.serve.errors import RequestError
from components.serve.tensors import from_proto, to_proto

VALUES = {tf.float32: [1.5, -2.25, 3.0, 0.5, 7.0, -1.0], tf.float64: [1e-300, 2.5, -3.0, 4.0, 0.0, 6.0],
          tf.int64: [2 ** 40, -3, 0, 7, 8, -(2 ** 62)], tf.int32: [1, -2, 3, 2 ** 30, 5, 6],
          tf.uint8: [0, 255, 7, 8, 9, 10], tf.bool: [True, False, True, True, False, False],
          tf.string: [b"a", b"\xff\x00", b"", "h\u00e9".encode(), b"e", b"f"]}
FIELDS = {tf.float32: "float_val", tf.float64: "double_val", tf.int64: "int64_val", tf.int32: "int_val",
          tf.uint8: "int_val", tf.bool: "bool_val", tf.string: "string_val"}


def typed(dtype: tf.DType, shape: list[int], values: list) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]))
    getattr(proto, FIELDS[dtype]).extend(values)
    return proto


def read(proto: tensor_pb2.TensorProto, dtype: tf.DType) -> np.ndarray:
    return from_proto(proto, tf.TensorSpec(None, dtype), "x", allow_non_finite=False, max_bytes=1 << 20)


@pytest.mark.parametrize("dtype", list(VALUES), ids=lambda d: d.name)
def test_every_form_a_client_sends_reads_as_tensorflow_reads_it(dtype):
    values = VALUES[dtype]
    forms = {"tensor_content" if dtype != tf.string else "make_tensor_proto":
             tf.make_tensor_proto(np.array(values, dtype=dtype.as_numpy_dtype).reshape(2, 3)),
             "typed": typed(dtype, [2, 3], values),
             "fewer values (the last repeated)": typed(dtype, [2, 3], values[:2]),
             "no values (zeros)": typed(dtype, [2, 3], []),
             "a scalar": typed(dtype, [], values[:1]),
             "empty": typed(dtype, [0, 3], [])}
    for form, proto in forms.items():
        ours, theirs = read(proto, dtype), tf.make_ndarray(proto)
        assert ours.dtype == theirs.dtype, form
        assert ours.shape == theirs.shape, form
        assert ours.tolist() == theirs.tolist(), form


def test_a_tensor_content_of_the_wrong_length_is_refused_naming_the_input():
    proto = tf.make_tensor_proto(np.zeros((2, 3), np.float32))
    proto.tensor_content = proto.tensor_content[:-4]
    with pytest.raises(RequestError, match=r"input 'x': tensor_content of 20 bytes for tensor_shape \[2, 3\]"):
        read(proto, tf.float32)


@pytest.mark.parametrize("dtype", list(VALUES), ids=lambda d: d.name)
def test_answers_fill_the_typed_fields_and_read_back_whole(dtype):
    array = np.array(VALUES[dtype], dtype=dtype.as_numpy_dtype).reshape(3, 2)
    response = predict_pb2.PredictResponse()
    to_proto(array, response.outputs["y"])
    answered = predict_pb2.PredictResponse.FromString(response.SerializeToString()).outputs["y"]
    assert not answered.tensor_content
    assert len(getattr(answered, FIELDS[dtype])) == 6
    assert tf.make_ndarray(answered).tolist() == array.tolist()


def test_text_in_an_answer_is_written_as_utf8():
    proto = to_proto(np.array([["h\u00e9", b"\xff"]], dtype=object))
    assert list(proto.string_val) == ["h\u00e9".encode(), b"\xff"]
    assert [d.size for d in proto.tensor_shape.dim] == [1, 2]


def test_logged_tensors_parse_back_as_the_arrays_they_were():
    arrays = {"image": np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1),
              "p": np.linspace(0, 1, 300, dtype=np.float32).reshape(30, 10),  # lengths over one byte
              "ids": np.array([3, -1], dtype=np.int64), "none": np.zeros((0, 4), np.float64),
              "flags": np.array([True, False]), "names": np.array([b"a", "b\u00e9"], dtype=object),
              "reversed": np.arange(6, dtype=np.int32).reshape(2, 3)[:, ::-1]}
    for _ in range(2):  # the second time from the cached headers
        request = predict_pb2.PredictRequest.FromString(wire.tensors(wire.INPUTS, arrays))
        assert sorted(request.inputs) == sorted(arrays)
        for name, array in arrays.items():
            read_back = tf.make_ndarray(request.inputs[name])
            expected = [v.encode() if isinstance(v, str) else v for v in array.reshape(-1).tolist()]
            assert read_back.shape == array.shape, name
            assert read_back.reshape(-1).tolist() == expected, name
