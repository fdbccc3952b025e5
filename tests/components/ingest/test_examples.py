"""Examples encoded from Arrow columns are the bytes protobuf itself serializes, for every feature type."""

import math

import pyarrow as pa

from components.ingest.examples import serialize

# Names in sorted order: protobuf's deterministic serialization writes map entries sorted by key, and the
# encoder writes them in column order, so the two must then agree byte for byte.
TYPES = {"a_float": "float", "b_int": "int", "c_string": "string", "d_text": "text", "e_image": "image",
         "f_ints": "int_list", "g_floats": "float_list", "h_strings": "string_list"}
COLUMNS = {
    "a_float": pa.array([1.5, None, -0.0, 3.4e38, 1e-45, 0.1], pa.float64()),
    "b_int": pa.array([0, 1, -1, 2**63 - 1, -(2**63), None], pa.int64()),
    "c_string": pa.array(["Oslo", "", None, "Austin, TX", "é" * 200, "x"]),
    "d_text": pa.array(["a b c", None, "", "word " * 40, "ü", "z"]),
    "e_image": pa.array([b"\x89PNG\x00", None, b"", bytes(range(256)) * 3, b"\x00", b"i"], pa.binary()),
    "f_ints": pa.array([[1, -2, 300], None, [], [2**40], [None, 5], [0]], pa.list_(pa.int64())),
    "g_floats": pa.array([[0.5], [], None, [1.0, 2.0, -3.25], [None], [7.0]], pa.list_(pa.float64())),
    "h_strings": pa.array([["a", ""], None, ["long" * 50], [], ["x", None], ["y"]], pa.list_(pa.string())),
}


def expected(row: int):
    """The row as a `tf.train.Example` built field by field; a null value or an empty list leaves its feature out,
    a null inside a list reads as 0 or empty."""
    import tensorflow as tf

    example = tf.train.Example()
    for name, ftype in TYPES.items():
        value = COLUMNS[name][row].as_py()
        values = value if ftype.endswith("_list") else None if value is None else [value]
        if not values:
            continue
        feature = example.features.feature[name]
        base = ftype.removesuffix("_list")
        if base == "float":
            feature.float_list.value.extend(0.0 if v is None else v for v in values)
        elif base == "int":
            feature.int64_list.value.extend(0 if v is None else v for v in values)
        else:
            feature.bytes_list.value.extend(b"" if v is None else v if isinstance(v, bytes) else v.encode()
                                            for v in values)
    return example


def test_every_type_encodes_as_protobuf_serializes_it():
    table = pa.table(COLUMNS)
    records = serialize(table, TYPES)
    assert len(records) == table.num_rows
    for row, record in enumerate(records):
        assert record == expected(row).SerializeToString(deterministic=True), f"row {row}"
    assert math.copysign(1, expected(2).features.feature["a_float"].float_list.value[0]) == -1  # -0.0 kept


def test_features_come_in_column_order_and_an_empty_batch_has_none():
    import tensorflow as tf

    table = pa.table({"z": pa.array([1.0]), "a": pa.array([2], pa.int64())})
    record = serialize(table, {"z": "float", "a": "int"})[0]
    parsed = tf.train.Example.FromString(record)
    assert parsed.features.feature["z"].float_list.value == [1.0]
    assert parsed.features.feature["a"].int64_list.value == [2]
    assert record.index(b"\n\x01z") < record.index(b"\n\x01a")
    assert len(serialize(table.slice(0, 0), {"z": "float", "a": "int"})) == 0
