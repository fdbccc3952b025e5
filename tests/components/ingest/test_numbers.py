"""Numbers no column type can hold are rejected by name in every format, and the statistics count every row."""

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.common.config import IngestConfig
from components.ingest import IngestError, run
from components.ingest.stats import NumericStats
from tests.conftest import read_examples

ROWS = 40
FLOAT_REASON = "column 'x': expected a finite number within float32, found "
INT_REASON = "column 'n': expected an integer within int64, found "
# Row id -> (column, the value as the format writes it, the text the reason quotes).
BAD = {
    "csv": {3: ("x", "1e999999", "1e999999"), 5: ("x", "-inf", "-inf"), 7: ("x", "NAN", "NAN"),
            9: ("x", "1e39", "1e39"), 11: ("n", "9223372036854775808", "9223372036854775808"),
            13: ("n", "-9223372036854775809", "-9223372036854775809")},
    "jsonl": {3: ("x", "1e999999", "1e999999"), 5: ("x", "-Infinity", "-Infinity"), 7: ("x", "NaN", "NaN"),
              9: ("x", "1e39", "1e39"), 11: ("n", "9223372036854775808", "9223372036854775808")},
    "parquet": {3: ("x", math.inf, "inf"), 5: ("x", -math.inf, "-inf"), 7: ("x", math.nan, "nan"),
                9: ("x", 1e300, "1e+300"), 11: ("n", 2**64 - 1, "18446744073709551615")},
}
MISSING_X = 15


def rows(fmt: str) -> list[dict]:
    """ROWS rows of id, x (float), n (int), label; BAD[fmt]'s values in place, x missing in row MISSING_X."""
    out = [{"id": i, "x": i / 4, "n": i * 1000, "label": i % 2} for i in range(ROWS)]
    for i, (column, written, _) in BAD[fmt].items():
        out[i][column] = written
    out[MISSING_X]["x"] = None
    return out


def write(tmp_path, fmt: str):
    path = tmp_path / f"data.{fmt}"
    data = rows(fmt)
    if fmt == "csv":
        path.write_text("id,x,n,label\n" + "".join(
            ",".join("" if v is None else str(v) for v in row.values()) + "\n" for row in data))
    elif fmt == "jsonl":
        path.write_text("".join(
            "{" + ", ".join(f'"{k}": {"null" if v is None else v}' for k, v in row.items()) + "}\n" for row in data))
    else:
        pq.write_table(pa.table({
            "id": pa.array([r["id"] for r in data], pa.int64()),
            "x": pa.array([r["x"] for r in data], pa.float64()),
            "n": pa.array([r["n"] for r in data], pa.uint64()),
            "label": pa.array([r["label"] for r in data], pa.int64()),
        }), path)
    return path


def first_line(fmt: str) -> int:
    """The line or row number of row id 0."""
    return 2 if fmt == "csv" else 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_out_of_range_numbers_are_rejected_by_name(tmp_path, fmt):
    src = write(tmp_path, fmt)
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(src), key="id", max_rejected_fraction=0.2), str(out))
    bad = BAD[fmt]
    assert (result.rows, result.rejected) == (ROWS - len(bad), len(bad))
    rejected = {r["line"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    expected = {first_line(fmt) + i: (INT_REASON if column == "n" else FLOAT_REASON) + repr(shown)
                for i, (column, _, shown) in bad.items()}
    assert {line: r["reason"] for line, r in rejected.items()} == expected
    assert all(r["file"] == str(src) for r in rejected.values())

    back = read_examples(out)
    ids = np.concatenate([split["id"] for split in back.values()])
    assert sorted(ids.tolist()) == [i for i in range(ROWS) if i not in bad]
    assert all(np.isfinite(split["x"]).all() for split in back.values())

    columns = json.loads((out / "stats.json").read_text())["columns"]
    assert {name: s["count"] + s["missing"] for name, s in columns.items()} == dict.fromkeys(columns, result.rows)
    assert columns["x"]["missing"] == 1
    assert math.isfinite(columns["x"]["max"])


def test_out_of_range_numbers_count_towards_the_rejected_limit(tmp_path):
    src = write(tmp_path, "csv")
    with pytest.raises(IngestError, match=r"6 of 40 rows rejected \(15.0%\)") as err:
        run(IngestConfig(source=str(src), max_rejected_fraction=0.1), str(tmp_path / "out"))
    assert f"{src}:5: column 'x': expected a finite number within float32, found '1e999999'" in str(err.value)
    assert not (tmp_path / "out").exists()


# The moments of a column holding inf are not finite, and numpy says so; the counts are what is checked.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_numeric_statistics_count_every_value_they_are_given():
    stats = NumericStats()
    stats.update(pa.array([1.0, math.inf, None, 2.0], pa.float32()))
    stats.update(pa.array([None, None], pa.float32()))
    summary = stats.to_dict()
    assert (summary["count"], summary["missing"]) == (3, 3)
