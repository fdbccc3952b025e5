"""List features: read from JSON lines and Parquet lists or split CSV cells, typed value by value, stored as
variable-length examples, described by their values and lengths, and rejected by column and line when a row
holds the wrong shape or a bad value."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from components.common.config import IngestConfig
from components.common.metadata import DataMetadata
from components.common.schema import Schema
from components.data import reviews
from components.ingest import IngestError, run
from tests.components.ingest.test_bad_input import rejected
from tests.components.ingest.test_beam import THREADS, assert_close, assert_merged_in_any_order_equal_one_pass
from tests.conftest import write_csv

TAGS = ("red", "green", "blue", "big", "small")


def orders(count: int = 120) -> list[dict]:
    """Rows with a list of strings, of floats and of ints (some empty), a number and a label."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(count):
        tags = [str(t) for t in rng.choice(TAGS, int(rng.integers(0, 4)), replace=False)]
        weights = [round(float(w), 2) for w in rng.uniform(0, 10, int(rng.integers(1, 5)))]
        rows.append({"id": i, "tags": tags, "weights": weights, "counts": [int(c) for c in rng.integers(0, 9, 2)],
                     "x": round(float(rng.random()), 3), "label": "yes" if "red" in tags else "no"})
    return rows


def write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def stored_rows(out) -> dict[int, dict]:
    """Every example written, by id, its features as Python values."""
    found = {}
    for file in sorted(out.glob("*/*.tfrecord.gz")):
        for record in tf.data.TFRecordDataset(str(file), compression_type="GZIP"):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            values = {name: list(getattr(f, f.WhichOneof("kind")).value) for name, f in features.items()}
            found[values["id"][0]] = values
    return found


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_lists_from_every_format_are_typed_stored_and_described(tmp_path, fmt):
    rows = orders()
    if fmt == "jsonl":
        source = write_jsonl(tmp_path / "o.jsonl", rows)
    elif fmt == "parquet":
        source = tmp_path / "o.parquet"
        pq.write_table(pa.Table.from_pylist(rows), source)
    else:
        source = write_csv(tmp_path / "o.csv", list(rows[0]),
                           [[";".join(map(str, v)) if isinstance(v, list) else v for v in r.values()] for r in rows])
    run(IngestConfig(source=str(source), label="label", key="id", list_delimiter=";"), str(tmp_path / "out"))
    schema = Schema.read(str(tmp_path / "out"))
    assert {f.name: f.type for f in schema.features} == {
        "id": "int", "tags": "string_list", "weights": "float_list", "counts": "int_list", "x": "float",
        "label": "string"}
    stored = stored_rows(tmp_path / "out")
    assert len(stored) == len(rows)
    for row in rows:
        got = stored[row["id"]]
        assert [t.decode() for t in got.get("tags", [])] == row["tags"]
        np.testing.assert_allclose(got["weights"], row["weights"], rtol=1e-6)
        assert got["counts"] == row["counts"]
    tags = schema.feature("tags").stats
    empty = sum(not r["tags"] for r in rows)
    # A CSV cell with no values is an empty cell, read as missing; JSON lines and Parquet keep the empty list.
    assert (tags["count"], tags["missing"]) == ((len(rows) - empty, empty) if fmt == "csv" else (len(rows), 0))
    assert tags["values"] == sum(len(r["tags"]) for r in rows)
    counted = {t: sum(t in r["tags"] for r in rows) for t in TAGS}
    assert dict(tags["top"]) == counted
    weights = schema.feature("weights").stats
    every = [w for r in rows for w in r["weights"]]
    assert weights["values"] == len(every)
    assert (weights["min"], weights["max"]) == (min(every), max(every))
    assert weights["mean"] == pytest.approx(np.mean(every), rel=1e-5)
    lengths = [len(r["weights"]) for r in rows]
    assert (weights["length"]["min"], weights["length"]["max"]) == (min(lengths), max(lengths))
    assert weights["length"]["mean"] == pytest.approx(np.mean(lengths))


def test_metadata_and_the_report_describe_values_per_row(tmp_path):
    rows = orders()
    run(IngestConfig(source=str(write_jsonl(tmp_path / "o.jsonl", rows)), label="label"), str(tmp_path / "out"))
    meta = DataMetadata.read(str(tmp_path / "out"))
    weights = meta.feature_schemas()["weights"]
    lengths = [len(r["weights"]) for r in rows]
    assert (weights.value_count.min, weights.value_count.max) == (min(lengths), max(lengths))
    common = meta.feature_stats()["weights"].num_stats.common_stats
    assert (common.min_num_values, common.max_num_values, common.tot_num_values) == \
        (min(lengths), max(lengths), sum(lengths))
    assert common.avg_num_values == pytest.approx(np.mean(lengths))
    assert sorted(meta.domain(meta.feature_schemas()["tags"]) or []) == sorted(TAGS)
    html = (tmp_path / "out" / "stats.html").read_text()
    assert "List features" in html
    assert "values per row" in html


def test_the_wrong_shape_or_a_bad_value_rejects_the_row_by_column_and_line(tmp_path):
    rows = orders(200)
    lines = [json.dumps(r) for r in rows]
    lines[4] = json.dumps({**rows[4], "tags": "red"})                # line 5: one value where lists are
    lines[9] = json.dumps({**rows[9], "x": [0.5]})                   # line 10: a list where single values are
    lines[14] = json.dumps({**rows[14], "weights": [1.0, "heavy"]})  # line 15: a value of the wrong type
    lines[19] = json.dumps({**rows[19], "tags": ["red", ""]})        # line 20: an empty value
    lines[24] = json.dumps({**rows[24], "counts": [1, None]})        # line 25: a null value
    lines[29] = json.dumps({**rows[29], "counts": [[1], [2]]})       # line 30: a list of lists
    lines[34] = json.dumps({**rows[34], "weights": [1e39]})          # line 35: beyond float32
    (tmp_path / "o.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(tmp_path / "o.jsonl"), label="label", max_rejected_fraction=0.05), str(out))
    assert result.rejected == 7
    assert {r["line"]: r["reason"] for r in rejected(out)} == {
        5: "column 'tags': expected a list (as from line 1), found a single value",
        10: "column 'x': expected a single value (as from line 1), found a list",
        15: "column 'weights': list value 2: expected a number, found 'heavy'",
        20: "column 'tags': list value 2: empty",
        25: "column 'counts': list value 2: null",
        30: "column 'counts': expected a single value or a list of them, found a JSON list in a list",
        35: "column 'weights': list value 1: expected a finite number within float32, found '1e+39'",
    }
    assert len(stored_rows(out)) == 193


def test_a_csv_list_needs_its_delimiter_and_the_label_and_key_cannot_be_lists(tmp_path):
    source = reviews.write(tmp_path / "r.csv", count=200)
    run(IngestConfig(source=str(source), label="sentiment", list_delimiter="|"), str(tmp_path / "split"))
    types = {f.name: f.type for f in Schema.read(str(tmp_path / "split")).features}
    assert (types["tags"], types["past_ratings"], types["review"]) == ("string_list", "int_list", "text")
    # Without the delimiter a list is a single value; forcing the list type then rejects every row that has one.
    with pytest.raises(IngestError, match=r"column 'tags': expected a list, found a single value \(set "
                                          r"ingest.list_delimiter to split text cells\)"):
        run(IngestConfig(source=str(source), label="sentiment", types={"tags": "string_list"}),
            str(tmp_path / "forced"))
    with pytest.raises(IngestError, match=r"ingest.types.sentiment: the label is one class or number per row, "
                                          r"not string_list"):
        run(IngestConfig(source=str(source), label="sentiment", types={"sentiment": "string_list"}),
            str(tmp_path / "label"))
    with pytest.raises(IngestError, match=r"ingest.key: column 'tags' holds lists \(string_list\)"):
        run(IngestConfig(source=str(source), label="sentiment", key="tags", list_delimiter="|"),
            str(tmp_path / "key"))
    assert not any((tmp_path / name).exists() for name in ("forced", "label", "key"))


def test_engines_agree_on_lists(tmp_path):
    source = write_jsonl(tmp_path / "o.jsonl", orders(300))
    run(IngestConfig(source=str(source), label="label", key="id"), str(tmp_path / "local"))
    run(IngestConfig(source=str(source), label="label", key="id", batch_rows=64, engine="beam"), str(tmp_path / "beam"),
        THREADS)
    for name in ("schema.json", "stats.json"):
        assert_close(json.loads((tmp_path / "local" / name).read_text()),
                     json.loads((tmp_path / "beam" / name).read_text()), name)
    assert stored_rows(tmp_path / "local") == stored_rows(tmp_path / "beam")


def test_list_statistics_merged_in_any_order_equal_one_pass():
    """Beam's accumulators for lists (a tenth of the rows missing): lengths, and values as numbers or strings."""
    rng = np.random.default_rng(5)
    rows = orders(500)
    batches = [pa.table({"weights": pa.array([r["weights"] if rng.random() > 0.1 else None for r in rows[i:i + 100]],
                                             pa.list_(pa.float32())),
                         "tags": pa.array([[t.encode() for t in r["tags"]] for r in rows[i:i + 100]],
                                          pa.list_(pa.binary())),
                         "label": pa.array(rng.choice([b"a", b"b"], 100))}) for i in range(0, 500, 100)]
    splits = [rng.integers(0, 3, 100).astype(np.int8) for _ in batches]
    assert_merged_in_any_order_equal_one_pass({"weights": "float_list", "tags": "string_list", "label": "string"},
                                              batches, splits, ([3, 0, 4, 2, 1],))
