"""Typed Arrow columns to serialized `tf.train.Example`s, a whole batch at a time, without TensorFlow.

Building protos row by row in Python runs at about 23,000 rows/s a core.
Here each level of the message (value list, Feature, map entry, Features,
Example) is written for every row of a batch at once in protobuf's wire
format: a field is its tag, its length as a varint and its bytes, joined
row by row by Arrow's `binary_join_element_wise` in C++ (outside the GIL, so
two batches encode at once on two threads): about 330,000 rows of 20 columns
a second on one core, where `tf.io.encode_proto` did 200,000. Fields come in the order
`tf.io.encode_proto` writes them (columns in table order, lists packed), so
the bytes are those TensorFlow's own encoder gives. A missing value leaves
its feature out of the example, as TensorFlow's parsers expect. Without
TensorFlow, a Beam worker process encodes without spending seconds loading it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.common.schema import with_lists

BYTES = pa.large_binary()
_NOTHING = pa.scalar(b"", BYTES)
# The Feature field (bytes_list 1, float_list 2, int64_list 3) each schema type is stored in.
_KIND = with_lists({"int": 3, "float": 2, "string": 1, "text": 1, "image": 1})


def serialize(table: pa.Table, types: dict[str, str]) -> np.ndarray:
    """Returns one serialized Example (bytes) per row of `table`."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=object)
    entries = [_entry(name, table.column(name).combine_chunks(), types[name]) for name in table.column_names]
    features = pc.binary_join_element_wise(*entries, _NOTHING, null_handling="skip")
    return _field(1, features).to_numpy(zero_copy_only=False)


def _entry(name: str, values: pa.Array, ftype: str) -> pa.Array:
    """Each row's `Features.FeatureEntry` of this column (key, then Feature); null where the row has no value."""
    key = _tag(1) + _varint(len(name.encode())) + name.encode()
    feature = _field(_KIND[ftype], _value_list(values, ftype))
    return _field(1, pc.binary_join_element_wise(pa.scalar(key, BYTES), _field(2, feature), _NOTHING))


def _value_list(values: pa.Array, ftype: str) -> pa.Array:
    """Each row's Int64List / FloatList / BytesList message; null where the row has no value (an empty list
    included). Numbers are packed into one field; each bytes value is a field of its own."""
    element = ftype.removesuffix("_list")
    if ftype.endswith("_list"):
        lengths = pc.fill_null(pc.list_value_length(values), 0)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths.to_numpy(zero_copy_only=False))]), pa.int64())
        flat = _elements(pc.list_flatten(values), element)
        joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, flat, mask=pc.equal(lengths, 0)), _NOTHING)
    else:
        joined = pc.if_else(values.is_null(), pa.scalar(None, BYTES), _elements(values, element))
    return _field(1, joined) if element in ("int", "float") else joined


def _elements(values: pa.Array, element: str) -> pa.Array:
    """Each value's bytes as its list holds them: a float's 4 little-endian bytes, an int's varint, a bytes
    value as a field (tag, length, bytes). A null value reads as 0 or empty."""
    if element == "float":
        data = values.fill_null(0).to_numpy(zero_copy_only=False).astype("<f4")
        return _binary(data.view(np.uint8), np.arange(len(values) + 1, dtype=np.int64) * 4)
    if element == "int":
        return _varints(values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64))
    return _field(1, pc.cast(values.fill_null(""), BYTES))


def _field(number: int, payload: pa.Array) -> pa.Array:
    """A length-delimited field of each row: tag, length as a varint, `payload`; null where `payload` is."""
    payload = pc.cast(payload, BYTES)
    lengths = np.diff(np.frombuffer(payload.buffers()[1], np.int64, len(payload) + 1, payload.offset * 8))
    return pc.binary_join_element_wise(pa.scalar(_tag(number), BYTES), _varints(lengths.view(np.uint64)), payload,
                                       _NOTHING)


def _tag(number: int) -> bytes:
    return bytes([number << 3 | 2])  # wire type 2: length-delimited


def _varint(value: int) -> bytes:
    return _varints(np.array([value], np.uint64))[0].as_py()


def _varints(values: np.ndarray) -> pa.Array:
    """Each unsigned 64-bit value as a protobuf varint: seven bits a byte, low first, the high bit set on all
    but the last. Lengths mostly take one byte, and then so does the work."""
    width = int(values.max(initial=0)).bit_length() // 7 + 1
    if width == 1:
        return _binary(values.astype(np.uint8), np.arange(len(values) + 1, dtype=np.int64))
    shifted = values[:, None] >> (np.arange(width, dtype=np.uint64) * 7)
    sizes = np.count_nonzero(shifted[:, 1:], axis=1) + 1
    position = np.arange(width)
    more = (position < (sizes - 1)[:, None]).astype(np.uint8) << 7
    data = ((shifted & 0x7F).astype(np.uint8) | more)[position < sizes[:, None]]
    return _binary(data, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))


def _binary(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(BYTES, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
