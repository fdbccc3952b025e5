"""Types for raw columns: inferred from a sample, then enforced row by row.

Conversion is vectorised with Arrow compute. The fast path casts a whole
column at once; only when that fails does a column fall back to a per-value
check, so that clean data pays nothing and dirty data still has every bad row
named. Nothing is coerced silently: a value that does not parse as its
column's type, or does not fit it (an integer beyond int64, a float that is
not finite as float32), rejects its row, with the column, the value and the
expected type.

A list column (Parquet or JSON lines lists, or CSV cells split by
`ingest.list_delimiter`) is typed value by value the same way; a row with a
list where its column holds single values, or the reverse, is rejected.
"""

from __future__ import annotations

import io as stdio
import json
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.common.schema import LIST_PADDING, ImageShape
from components.common.text import tokens
from components.ingest.raw import relisted
from components.ingest.sources import RawBatch, rejection

INT_PATTERN = r"^[+-]?\d+$"
FLOAT_PATTERN = r"^[+-]?((\d+\.?\d*)|(\.\d+))([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"
PATTERNS = {"int": INT_PATTERN, "float": FLOAT_PATTERN}
ARROW_TYPES = {"int": pa.int64(), "float": pa.float32(), "string": pa.binary(), "text": pa.binary(),
               "image": pa.binary()}
# Text is parsed at the widest precision, then stored as ARROW_TYPES says.
PARSED_TYPES = {"int": pa.int64(), "float": pa.float64()}
# A string column of the sample is text when this fraction of its values are distinct and they hold this
# many tokens on average (`_is_prose`).
TEXT_UNIQUE = 0.5
TEXT_TOKENS = 5.0
# What a value that reads as a number but does not fit was expected to be.
RANGES = {"int": "an integer within int64", "float": "a finite number within float32"}
INT_LIST_PADDING = LIST_PADDING["int"]  # no list value may be the padding of a served list


@dataclass
class Typed:
    """One batch after typing: the rows that passed, as Arrow columns, and those that did not."""

    table: pa.Table
    lines: np.ndarray
    # The text each good row's split is decided by.
    keys: pa.Array
    rejected: list[dict]


def infer_types(sample: pa.Table, overrides: dict[str, str], image_columns: set[str],
                tolerance: float, label: str = "", list_delimiter: str = "") -> dict[str, str]:
    """int, float, string, text or a list of one of the first three for each column, from the values in
    `sample`; `overrides` win.

    A column is numeric when at most `tolerance` of its values fail to parse as
    numbers: those rows are then rejected by name rather than the whole column
    silently becoming text. Of the rest, a column is text when it reads as prose
    (`_is_prose`); never the label, which is a class. A column of lists, or of
    text holding `list_delimiter` and not prose, is a list of what its values are.
    """
    types = {}
    for name in sample.column_names:
        col = sample.column(name)
        if name in overrides:
            types[name] = overrides[name]
        elif name in image_columns:
            types[name] = "image"
        elif _is_list(col.type):
            types[name] = _infer_column(pc.list_flatten(col), tolerance, text_allowed=False) + "_list"
        elif name != label and _is_delimited(col, list_delimiter):
            types[name] = _infer_column(_split(col, list_delimiter)[0], tolerance, text_allowed=False) + "_list"
        else:
            types[name] = _infer_column(col, tolerance, text_allowed=name != label)
    return types


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_delimited(col: pa.ChunkedArray, delimiter: str) -> bool:
    """Text in which some value holds `delimiter`, and which is not prose (a sentence may hold a `;`)."""
    if not delimiter or not (pa.types.is_binary(col.type) or pa.types.is_string(col.type)):
        return False
    text = _as_text(col.drop_null())
    if text is None or len(text) == 0 or not pc.any(pc.match_substring(text, delimiter)).as_py():
        return False
    return not _is_prose(text)


def _split(col, delimiter: str) -> tuple[pa.Array, pa.Array]:
    """A text column's cells split at `delimiter`, each value trimmed: (every value, the list of each cell)."""
    text, _ = _text(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    lists = pc.split_pattern(text, delimiter)
    values = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    return values, relisted(lists, values)


def _infer_column(col: pa.ChunkedArray, tolerance: float, text_allowed: bool) -> str:
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if not (pa.types.is_binary(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return "string"
    text = _as_text(col.drop_null())
    if text is None or len(text) == 0:
        return "string"
    text = pc.utf8_trim_whitespace(text)
    allowed = int(tolerance * len(text))
    for ftype, pattern in (("int", INT_PATTERN), ("float", FLOAT_PATTERN)):
        failures = len(text) - pc.sum(pc.match_substring_regex(text, pattern, ignore_case=True)).as_py()
        if failures <= allowed and failures < len(text):
            return ftype
    return "text" if text_allowed and _is_prose(text) else "string"


def _is_prose(text: pa.ChunkedArray) -> bool:
    """Text, not a category: at least TEXT_UNIQUE of the values distinct (a category repeats; ids, names and
    codes do not, but they are short) and TEXT_TOKENS tokens a value on average (ids, codes and most names
    are one to three)."""
    distinct = pc.count_distinct(text).as_py() / len(text)
    return distinct >= TEXT_UNIQUE and float(np.mean(tokens(text.combine_chunks())[1])) >= TEXT_TOKENS


def _as_text(col) -> pa.ChunkedArray | None:
    """Binary as UTF-8 text, or None if some value is not valid UTF-8."""
    try:
        return pc.cast(col, pa.string())
    except pa.ArrowInvalid:
        return None


def image_shape(png: bytes) -> ImageShape:
    from PIL import Image

    img = Image.open(stdio.BytesIO(png))
    return ImageShape(height=img.height, width=img.width, channels=1 if img.mode == "L" else 3)


def conform(batch: RawBatch, types: dict[str, str], label: str, key: str, drop: tuple[str, ...],
            max_text_bytes: int, list_delimiter: str = "") -> Typed:
    """Types every column of `batch`; rows with a bad value, a text over `max_text_bytes` or no label are rejected."""
    table = batch.table
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    columns = {}
    for name, ftype in types.items():
        if name in drop:
            continue
        col = table.column(name).combine_chunks()
        if ftype.endswith("_list"):
            values, invalid, why = _convert_list(col, ftype.removesuffix("_list"), list_delimiter)
        elif _is_list(col.type):
            values, invalid, why = _wrong_shape(col, ARROW_TYPES[ftype], "expected a single value, found a list")
        else:
            values, invalid, why = _convert(col, ftype)
        if ftype == "text":
            invalid, why = _within(values, max_text_bytes, invalid, why)
        if invalid is not None:
            for i in np.flatnonzero(invalid & ~bad):
                reasons[int(i)] = f"column {name!r}: {why(int(i))}"
            bad |= invalid
        columns[name] = values
    missing_label = np.asarray(pc.is_null(columns[label]).to_numpy(zero_copy_only=False), dtype=bool) & ~bad
    for i in np.flatnonzero(missing_label):
        reasons[int(i)] = f"label column {label!r} is empty"
    bad |= missing_label
    keys = _split_keys(table, key)
    rejected = list(batch.rejected)
    if bad.any():
        raw = _raw_rows(table)
        rejected.extend(rejection(batch.file, int(batch.lines[i]), raw[i], reasons[int(i)])
                        for i in np.flatnonzero(bad))
        good = pa.array(~bad)
        typed = pa.table(columns).filter(good)
        keys = keys.filter(good)
        lines = batch.lines[~bad]
    else:
        typed, lines = pa.table(columns), batch.lines
    return Typed(typed, lines, keys, rejected)


def _convert(col: pa.Array, ftype: str):
    """Returns (typed column, invalid mask or None, reason for row i)."""
    if ftype in ("int", "float"):
        return _convert_number(col, ftype)
    if ftype == "image" or pa.types.is_string(col.type):
        return pc.cast(col, ARROW_TYPES[ftype]), None, None
    text, not_utf8 = _text(col)
    return text.cast(pa.binary()), not_utf8, lambda i: "value is not valid UTF-8"


def _wrong_shape(col: pa.Array, target: pa.DataType, reason: str):
    """A list where single values are expected, or the reverse: every row holding a value is rejected."""
    invalid = col.is_valid().to_numpy(zero_copy_only=False)
    return pa.nulls(len(col), target), invalid if invalid.any() else None, lambda i: reason


def _convert_list(col: pa.Array, element: str, delimiter: str):
    """A column of lists of `element` values; returns (typed lists, invalid mask or None, reason for row i).

    A row is rejected for its first bad value (named by its place in the list), for a null or empty value in
    the list, or for holding a single value where a list is expected (text with no `delimiter` to split it).
    """
    not_utf8 = None
    if _is_list(col.type):
        lists = col.cast(pa.list_(col.type.value_type)) if not pa.types.is_list(col.type) else col
        values = pc.list_flatten(lists)
    elif delimiter:
        _, not_utf8 = _text(col)
        values, lists = _split(col, delimiter)
    else:
        return _wrong_shape(col, pa.list_(ARROW_TYPES[element]),
                            "expected a list, found a single value (set ingest.list_delimiter to split text cells)")
    typed, invalid, why = _convert(values, element)
    bad_value = np.zeros(len(values), dtype=bool) if invalid is None else invalid
    empty = values.is_null().to_numpy(zero_copy_only=False)
    if element == "string":
        empty |= pc.fill_null(pc.equal(pc.binary_length(typed), 0), False).to_numpy(zero_copy_only=False)
    padding = pc.fill_null(pc.equal(typed, INT_LIST_PADDING), False).to_numpy(zero_copy_only=False) \
        if element == "int" else np.zeros(len(values), dtype=bool)
    out = relisted(lists, typed)
    offsets = out.offsets.to_numpy()
    failed = bad_value | empty | padding
    rows = np.zeros(len(col), dtype=bool) if not_utf8 is None else not_utf8.copy()
    if not failed.any() and not rows.any():
        return out, None, None
    first = {}  # the first bad value of each row, by its index among all values
    for j in np.flatnonzero(failed)[::-1]:
        first[int(np.searchsorted(offsets, j, side="right") - 1)] = int(j)
    rows[list(first)] = True

    def reason(i: int) -> str:
        if not_utf8 is not None and not_utf8[i]:
            return "value is not valid UTF-8"
        j = first[i]
        what = f"{INT_LIST_PADDING} marks padding in a served list" if padding[j] else why(j) if bad_value[j] \
            else "null" if values[j].as_py() is None else "empty"
        return f"list value {j - offsets[i] + 1}: {what}"

    return out, rows, reason


def _within(values: pa.Array, max_bytes: int, invalid: np.ndarray | None, why):
    """Adds texts longer than `max_bytes` to `invalid`; returns (invalid or None, reason for row i)."""
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    long = lengths > max_bytes
    if not long.any():
        return invalid, why
    return long if invalid is None else invalid | long, \
        lambda i: f"text of {lengths[i]:,} bytes, longer than ingest.max_text_bytes={max_bytes:,}" if long[i] \
        else why(i)


def _convert_number(col: pa.Array, ftype: str):
    """Numbers from typed or text values; one that is not a number, or is outside the type's range, is invalid.

    A float must be finite once stored as float32: an overflow (`1e999999`,
    `1e39`), `inf` or `nan` would otherwise reach training as a NaN loss.
    """
    target = ARROW_TYPES[ftype]
    if not (pa.types.is_binary(col.type) or pa.types.is_string(col.type)):
        try:
            values = pc.cast(col, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            col = pc.cast(col, pa.string())  # e.g. uint64 beyond int64, or a float where an int is due
        else:
            return _in_range(values, None, lambda: pc.cast(col, pa.string()), ftype)
    text, not_utf8 = _text(col)
    text = pc.utf8_trim_whitespace(text)
    try:
        parsed, invalid = pc.cast(text, PARSED_TYPES[ftype]), not_utf8
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed, unparsed = _parse_each(text, ftype)
        invalid = unparsed if not_utf8 is None else unparsed | not_utf8
    return _in_range(pc.cast(parsed, target), invalid, lambda: text, ftype, not_utf8)


def _in_range(values: pa.Array, invalid: np.ndarray | None, text, ftype: str, not_utf8: np.ndarray | None = None):
    """Adds non-finite floats to `invalid`; returns (values, invalid or None, reason for row i).

    `text` makes the values' text, only once a row is to be rejected, for its reason.
    """
    if ftype == "float":
        finite = pc.fill_null(pc.is_finite(values), True)
        if not pc.all(finite).as_py():
            non_finite = ~np.asarray(finite.to_numpy(zero_copy_only=False), dtype=bool)
            invalid = non_finite if invalid is None else invalid | non_finite
    if invalid is None:
        return values, None, None
    shown = text().to_pylist()
    return values, invalid, lambda i: "value is not valid UTF-8" if not_utf8 is not None and not_utf8[i] \
        else _why(shown[i], ftype)


def _why(value: str, ftype: str) -> str:
    """The reason a value was rejected: not a number at all, or a number its type cannot hold."""
    if re.match(PATTERNS[ftype], value, re.IGNORECASE):
        return f"expected {RANGES[ftype]}, found {value!r}"
    return f"expected {'an integer' if ftype == 'int' else 'a number'}, found {value!r}"


def _parse_each(text: pa.Array, ftype: str) -> tuple[pa.Array, np.ndarray]:
    """The slow path, once a whole-column cast has failed: (parsed values, which did not parse)."""
    ok = pc.fill_null(pc.match_substring_regex(text, PATTERNS[ftype], ignore_case=True), True)
    invalid = ~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    clean = pc.if_else(ok, text, pa.nulls(len(text), pa.string()))
    try:
        return pc.cast(clean, PARSED_TYPES[ftype]), invalid
    except pa.ArrowInvalid:  # an integer beyond int64: Python's ints say which
        values = clean.to_pylist()
        parsed = [_int64_or_none(v) for v in values]
        invalid |= np.array([v is not None and p is None for v, p in zip(values, parsed, strict=True)], dtype=bool)
        return pa.array(parsed, pa.int64()), invalid


def _int64_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


def _text(col: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """Binary as UTF-8 text, values that are not valid UTF-8 made null; and which those were (None if none)."""
    text = _as_text(col)
    if text is not None:
        return text, None
    not_utf8 = _not_utf8(col)
    return pc.cast(pc.if_else(pa.array(~not_utf8), col, pa.nulls(len(col), col.type)), pa.string()), not_utf8


def _not_utf8(col: pa.Array) -> np.ndarray:
    """Which values of a binary column are not valid UTF-8 (the slow path, once a cast has failed)."""
    return np.array([v is not None and not _is_utf8(v) for v in col.to_pylist()], dtype=bool)


def _is_utf8(v: bytes) -> bool:
    try:
        v.decode("utf8")
        return True
    except UnicodeDecodeError:
        return False


def _readable(value) -> str | int | float | None:
    return value.decode("utf8", "backslashreplace")[:200] if isinstance(value, bytes) else value


def _split_keys(table: pa.Table, key: str) -> pa.Array:
    """The text that decides a row's split: the key column, or every value of the row joined."""
    cols = [table.column(key)] if key else [table.column(n) for n in table.column_names]
    cols = [pc.binary_join(pc.cast(c, pa.list_(pa.string())), "\x1e") if _is_list(c.type) else c for c in cols]
    text = [c if pa.types.is_binary(c.type) else pc.cast(pc.cast(c, pa.string()), pa.binary()) for c in cols]
    text = [pc.fill_null(c, b"") for c in text]
    if len(text) == 1:
        return text[0].combine_chunks()
    return pc.binary_join_element_wise(*text, b"\x1f").combine_chunks()


def _raw_rows(table: pa.Table) -> list[str]:
    """Each row as readable text, for rejected.jsonl."""
    cols = []
    for c in table.columns:
        if _is_list(c.type):
            cols.append([None if v is None else json.dumps([_readable(x) for x in v]) for v in c.to_pylist()])
        elif pa.types.is_binary(c.type):
            cols.append([None if v is None else _readable(v) for v in c.to_pylist()])
        else:
            cols.append([None if v is None else str(v) for v in c.to_pylist()])
    return [",".join("" if v is None else v for v in row) for row in zip(*cols)]
