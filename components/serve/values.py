"""What a value may be for a tensor of a given dtype, checked before the model sees it.

numpy's casts wrap and overflow silently (300 as uint8 is 44, 2**70 as int64
is 0, 1e308 as float32 is infinity), and a model fed NaN answers NaN with a
confident class. So every cast from what a request carried to what a
signature takes goes through `cast`, which refuses what the cast would
change and says which input, where, and what was expected. Non-finite
numbers (and finite ones past float32) pass only with `serve.allow_non_finite`.
"""

from __future__ import annotations

import numpy as np

from components.serve.errors import RequestError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def cast(raw: np.ndarray, dtype: np.dtype, name: str, allow_non_finite: bool) -> np.ndarray:
    """`raw` as `dtype`, or a RequestError naming the input and its first value out of place."""
    dtype = np.dtype(dtype)
    kind = raw.dtype.kind
    if kind == "O":
        raw = _numbers(raw, name, dtype)
        kind = raw.dtype.kind
    if kind == "b" and dtype.kind != "b" or kind not in "biuf":
        raise RequestError(f"input {name!r}: expected {dtype.name} values, got {_kind(raw)}")
    if dtype.kind == "f":
        if not allow_non_finite and kind == "f":
            _refuse(~np.isfinite(raw), raw, name, f"{dtype.name} values, finite ones (NaN and Infinity are "
                                                  "refused unless serve.allow_non_finite is set)")
            if dtype.itemsize < raw.dtype.itemsize:
                _refuse(np.abs(raw) > FLOAT32_MAX, raw, name,
                        f"{dtype.name} values within +-{FLOAT32_MAX:.4g} (larger ones overflow to infinity)")
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        if kind == "f":
            _refuse(~np.isfinite(raw), raw, name, f"{dtype.name} values (integers)")
            _refuse(np.mod(raw, 1) != 0, raw, name, f"{dtype.name} values (integers)")
            # bounds as floats: info.max + 1 is a power of two, exact in float64, so < is exact too
            _refuse((raw < float(info.min)) | (raw >= float(info.max) + 1), raw, name, _range(dtype))
        elif not np.can_cast(raw.dtype, dtype) and raw.size:
            _refuse((raw < info.min) | (raw > info.max), raw, name, _range(dtype))
    elif dtype.kind == "b" and kind != "b":
        raise RequestError(f"input {name!r}: expected booleans (true / false), got {_kind(raw)}")
    return raw.astype(dtype, copy=False)


def _numbers(raw: np.ndarray, name: str, dtype: np.dtype) -> np.ndarray:
    """An object array (JSON integers past 64 bits, nulls, strings) as numbers, or the reason it is none."""
    for index, value in np.ndenumerate(raw):
        if value is None:
            raise RequestError(f"input {name!r}: null at {list(index)}; expected {dtype.name} values (a null "
                               "reads as missing only for a one-value-per-example input the schema gives a default)")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"input {name!r}: expected {dtype.name} values, got {_sample(value)} at "
                               f"{list(index)}")
        if isinstance(value, int) and dtype.kind in "iu":
            raise RequestError(f"input {name!r}: {value} at {list(index)} is out of range; expected {_range(dtype)}")
    return raw.astype(np.float64)


def _refuse(bad: np.ndarray, raw: np.ndarray, name: str, expected: str) -> None:
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), bad.shape)
        got = raw[index] if raw.ndim else raw
        raise RequestError(f"input {name!r}: {_sample(got.item())} at {list(map(int, index))}; expected {expected}")


def _range(dtype: np.dtype) -> str:
    info = np.iinfo(dtype)
    return f"{dtype.name} values in [{info.min}, {info.max}]"


def _kind(raw: np.ndarray) -> str:
    if raw.dtype.kind == "b":
        return "booleans"
    return f"{raw.dtype.name} values" if raw.dtype.kind in "iuf" or not raw.size else _sample(raw.reshape(-1)[0].item())


def _sample(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def first_non_finite_row(outputs: dict[str, np.ndarray]) -> int | None:
    """The first row where a float output is NaN or infinite, or None when every one is finite."""
    for value in outputs.values():
        if value.dtype.kind == "f" and value.ndim and value.size and not np.isfinite(value).all():
            return int(np.argmax(~np.isfinite(value.reshape(len(value), -1)).all(axis=1)))
    return None
