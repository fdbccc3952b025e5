"""Every kind of bad input is named: in rejected.jsonl row by row, or as one clear error."""

import json

import pytest

from components.common.config import IngestConfig
from components.ingest import IngestError, run
from components.ingest.sources import SourceError
from tests.conftest import people_rows, write_csv


def rejected(out):
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]


def dirty_csv(tmp_path):
    header, rows = people_rows(200)
    path = write_csv(tmp_path / "dirty.csv", header, rows)
    lines = path.read_bytes().split(b"\n")
    lines[3] = b"2,40,100.0,Oslo"                      # line 4: a field short
    lines[6] = b"5,forty,100.0,Oslo,1"                  # line 7: not an int
    lines[9] = b"8,40,100.0,\xff\xfeOslo,1"             # line 10: bad UTF-8
    lines[12] = b"11,40,1e999x,Oslo,0"                  # line 13: not a number
    lines[15] = b"14,40,100.0,Oslo,"                    # line 16: empty label
    lines[18] = b"17,40,100.0,Oslo,1,extra"             # line 19: a field too many
    path.write_bytes(b"\n".join(lines))
    return path


def test_each_bad_row_is_named(tmp_path):
    src = dirty_csv(tmp_path)
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(src), key="id", max_rejected_fraction=0.05), str(out))
    assert result.rows == 194
    assert result.rejected == 6
    rows = {r["line"]: r for r in rejected(out)}
    assert sorted(rows) == [4, 7, 10, 13, 16, 19]
    assert rows[4]["reason"] == "expected 5 fields, found 4"
    assert rows[19]["reason"] == "expected 5 fields, found 6"
    assert rows[7]["reason"] == "column 'age': expected an integer, found 'forty'"
    assert rows[10]["reason"] == "column 'city': value is not valid UTF-8"
    assert rows[13]["reason"] == "column 'income': expected a number, found '1e999x'"
    assert rows[16]["reason"] == "label column 'label' is empty"
    assert all(r["file"] == str(src) for r in rows.values())
    assert "forty" in rows[7]["raw"]
    assert rows[4]["raw"] == "2,40,100.0,Oslo"


def test_too_many_rejected_fails_and_keeps_what_was_there(tmp_path):
    src = dirty_csv(tmp_path)
    out = tmp_path / "out"
    run(IngestConfig(source=str(src), max_rejected_fraction=0.05), str(out))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(IngestError) as err:
        run(IngestConfig(source=str(src), max_rejected_fraction=0.01), str(out))
    message = str(err.value)
    assert "6 of 200 rows rejected (3.0%)" in message
    assert "max_rejected_fraction=0.01" in message
    assert f"{src}:4: expected 5 fields, found 4" in message
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    kept = tmp_path / "out.rejected.jsonl"
    assert len(kept.read_text().splitlines()) == 6
    assert not [p for p in tmp_path.iterdir() if ".staging" in p.name]


def test_no_good_rows(tmp_path):
    src = write_csv(tmp_path / "x.csv", ["a", "label"], [["1", ""], ["2", ""]])
    with pytest.raises(IngestError, match="no good rows: all 2 rows were rejected"):
        run(IngestConfig(source=str(src), max_rejected_fraction=1.0), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_missing_label_column(tmp_path, people_csv):
    with pytest.raises(IngestError, match=r"label column 'target' not found; columns are \['id', 'age'"):
        run(IngestConfig(source=str(people_csv), label="target"), str(tmp_path / "out"))


def test_unknown_columns_in_config(tmp_path, people_csv):
    with pytest.raises(IngestError, match=r"ingest.drop: column\(s\) \['nope'\] not in"):
        run(IngestConfig(source=str(people_csv), drop=("nope",)), str(tmp_path / "out"))


@pytest.mark.parametrize(("source", "message"), [
    ("missing.csv", "missing.csv does not exist"),
    ("data/*.parquet", "matched no files"),
])
def test_missing_source(tmp_path, source, message):
    with pytest.raises(SourceError, match=message):
        run(IngestConfig(source=str(tmp_path / source)), str(tmp_path / "out"))


def test_empty_and_unknown_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="empty.csv: file is empty"):
        run(IngestConfig(source=str(tmp_path / "empty.csv")), str(tmp_path / "out"))
    (tmp_path / "data.xls").write_text("x")
    with pytest.raises(SourceError, match="cannot tell the format of .*data.xls"):
        run(IngestConfig(source=str(tmp_path / "data.xls")), str(tmp_path / "out"))


def test_bad_json_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"x": 1, "label": 0}\n{"x": 2, "label": 1\n[1, 2]\n{"x": {"a": 1}, "label": 0}\n'
                     b'{"x": 3, "label": 0, "y": 1}\n\xff\n{"x": 4, "label": 1}\n')
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(path), max_rejected_fraction=1.0), str(out))
    assert result.rows == 2
    reasons = {r["line"]: r["reason"] for r in rejected(out)}
    assert reasons[2].startswith("not valid JSON")
    assert reasons[3] == "expected a JSON object, found list"
    assert reasons[4] == "column 'x': expected a single value or a list of them, found a JSON dict"
    assert reasons[5].startswith("unexpected keys ['y']")
    assert reasons[6].startswith("not valid UTF-8")


def test_parquet_with_strings_in_a_typed_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": ["1.5", "2.5", "oops", "4"], "label": [0, 1, 0, 1]}), tmp_path / "d.parquet")
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(tmp_path / "d.parquet"), types={"x": "float"}, max_rejected_fraction=0.5),
                 str(out))
    assert result.rows == 3
    assert rejected(out)[0]["line"] == 3
    assert "found 'oops'" in rejected(out)[0]["reason"]
