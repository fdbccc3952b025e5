"""Ingest, then read back with tf.data and the schema: the values are the source's."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.common.config import CsvOptions, IngestConfig, SplitRatios
from components.common.metadata import DataMetadata
from components.common.schema import Schema
from components.ingest import run
from tests.conftest import all_rows, people_rows, read_examples, write_csv


def ingest(tmp_path, source, name="out", **kw):
    out = tmp_path / name
    result = run(IngestConfig(source=str(source), **kw), str(out))
    return out, result


def test_csv_round_trip(tmp_path, people_csv):
    out, result = ingest(tmp_path, people_csv, key="id")
    header, rows = people_rows()
    assert result.rows == 500
    assert result.rejected == 0
    back = all_rows(read_examples(out), "id")
    assert sorted(back) == list(range(500))
    for row in rows:
        got = back[row[0]]
        assert got["age"] == row[1]
        assert got["income"] == pytest.approx(row[2], rel=1e-6)
        assert got["city"].decode() == row[3]
        assert got["label"] == row[4]
    schema = Schema.read(str(out))
    assert {f.name: f.type for f in schema.features} == {
        "id": "int", "age": "int", "income": "float", "city": "string", "label": "int"}
    assert sum(schema.splits.values()) == 500
    assert (out / "rejected.jsonl").read_text() == ""
    tfmd = DataMetadata.read(str(out))  # schema.pbtxt and stats.pb, in the formats TFDV writes
    assert {f.name for f in tfmd.schema.feature} == {"id", "age", "income", "city", "label"}
    assert tfmd.statistics.datasets[0].num_examples == 500
    stats = json.loads((out / "stats.json").read_text())
    ages = [r[1] for r in rows]
    assert stats["columns"]["age"]["min"] == min(ages)
    assert stats["columns"]["age"]["max"] == max(ages)
    assert stats["columns"]["age"]["mean"] == pytest.approx(np.mean(ages))
    assert stats["columns"]["age"]["std"] == pytest.approx(np.std(ages))
    assert dict(map(tuple, stats["columns"]["city"]["top"])) == {"Paris": 125, "Oslo": 125, "Lima": 125,
                                                                 "Austin, TX": 125}
    assert "<svg" in (out / "stats.html").read_text()


def test_shards_and_layout(tmp_path, people_csv):
    out, _ = ingest(tmp_path, people_csv, shards=3, batch_rows=64)
    for split in ("train", "eval", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == [
            f"data-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert {p.name for p in out.iterdir()} >= {"schema.json", "stats.json", "stats.html", "rejected.jsonl"}


def test_missing_values_read_as_the_mean(tmp_path):
    src = write_csv(tmp_path / "m.csv", ["id", "x", "s", "label"],
                    [[1, 1.0, "a", 0], [2, "", "", 1], [3, 3.0, "NA", 0], [4, "NA", "b", 1]])
    out, result = ingest(tmp_path, src, key="id")
    assert result.rejected == 0
    schema = Schema.read(str(out))
    assert schema.feature("x").stats["missing"] == 2
    assert schema.feature("s").stats["missing"] == 2
    back = all_rows(read_examples(out), "id")
    assert back[2]["x"] == pytest.approx(2.0)
    assert back[2]["s"] == b""
    assert back[3]["x"] == pytest.approx(3.0)


def test_parquet_and_jsonl_match_csv(tmp_path, people_csv):
    header, rows = people_rows()
    table = pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)})
    pq.write_table(table, tmp_path / "people.parquet", row_group_size=100)
    with open(tmp_path / "people.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(dict(zip(header, r))) + "\n")
    outs = {fmt: ingest(tmp_path, src, name=fmt, key="id")[0] for fmt, src in
            [("csv", people_csv), ("parquet", tmp_path / "people.parquet"), ("jsonl", tmp_path / "people.jsonl")]}
    reference = all_rows(read_examples(outs["csv"]), "id")
    for fmt in ("parquet", "jsonl"):
        back = all_rows(read_examples(outs[fmt]), "id")
        assert back.keys() == reference.keys()
        for k, row in reference.items():
            assert back[k]["_split"] == row["_split"], fmt
            assert back[k]["city"] == row["city"]
            assert back[k]["age"] == row["age"]
            assert back[k]["income"] == pytest.approx(row["income"])


def test_tsv_with_other_quoting_and_no_header(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("1\t'a\tb'\t0\n2\tc\t1\n")
    out, result = ingest(tmp_path, path, label="y", key="id",
                         csv=CsvOptions(delimiter="\t", quote_char="'", header=False, column_names=("id", "s", "y")))
    back = all_rows(read_examples(out), "id")
    assert back[1]["s"] == b"a\tb"
    assert back[2]["y"] == 1


def test_overrides_drop_and_types(tmp_path, people_csv):
    out, _ = ingest(tmp_path, people_csv, drop=("income",), types={"age": "float", "label": "string"})
    schema = Schema.read(str(out))
    assert [f.name for f in schema.features] == ["id", "age", "city", "label"]
    assert schema.feature("age").type == "float"
    assert schema.feature("label").type == "string"
    assert schema.label_feature.vocabulary
    assert set(schema.label_feature.vocabulary) == {"0", "1"}


def test_glob_of_several_files(tmp_path):
    header, rows = people_rows(100)
    write_csv(tmp_path / "in" / "a.csv", header, rows[:50])
    write_csv(tmp_path / "in" / "b.csv", header, rows[50:])
    out, result = ingest(tmp_path, f"{tmp_path}/in/*.csv", key="id")
    assert result.rows == 100
    out2, result2 = ingest(tmp_path, tmp_path / "in", name="folder", key="id")
    assert result2.rows == 100
    schema = Schema.read(str(out))
    assert len(schema.source["files"]) == 2


def test_second_run_replaces_the_first(tmp_path, people_csv):
    out, _ = ingest(tmp_path, people_csv)
    (out / "marker").write_text("old")
    ingest(tmp_path, people_csv, shards=1)
    assert not (out / "marker").exists()
    assert len(list((out / "train").iterdir())) == 1
    assert [p.name for p in tmp_path.iterdir() if ".staging" in p.name or ".old" in p.name] == []


def test_split_ratios_are_respected(tmp_path):
    header, rows = people_rows(4000)
    src = write_csv(tmp_path / "big.csv", header, rows)
    _, result = ingest(tmp_path, src, key="id", split=SplitRatios(0.5, 0.25, 0.25))
    assert result.splits["train"] == pytest.approx(2000, abs=150)
    assert result.splits["eval"] == pytest.approx(1000, abs=120)
