"""Batch scoring with real models: the served signature's numbers, keys, kept columns, rejected rows, both engines."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from components import predict
from components.common.config import BeamConfig, IngestConfig, PredictConfig
from components.common.errors import ExamplesError
from components.common.schema import Schema
from components.common.signatures import SignatureName
from components.common.task import task_of
from components.data import reviews
from components.predict import model
from tests.conftest import write_csv


def scored(out: Path) -> dict:
    """The predictions folder read back as one table (the files named with `_` are not part of it)."""
    return pq.read_table(out).to_pydict()


def served(home: Path, version: int, records: list[bytes]) -> dict:
    """What the model server answers: the version's own predict_examples signature."""
    loaded = tf.saved_model.load(str(home / str(version)))
    return {k: v.numpy() for k, v in loaded.signatures[SignatureName.PREDICT_EXAMPLES](
        inputs=tf.constant(records)).items()}


def records_of(examples: str) -> list[bytes]:
    files = sorted(tf.io.gfile.glob(f"{examples}/*/*.tfrecord.gz"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_examples_are_scored_as_the_server_scores_them_each_by_file_and_record(penguins_home, penguins_examples,
                                                                                tmp_path):
    version = model.resolve(penguins_home, version=1)
    out = tmp_path / "preds"
    result = predict.run(PredictConfig(batch_size=50, keep=("island",)), version, str(out),
                         examples=penguins_examples)
    table = scored(out)
    records = records_of(penguins_examples)
    assert result.rows == len(records) == len(table["predicted_class"])
    assert result.rejected == 0
    assert list(table) == ["file", "line", "island", "predicted_class", "probabilities"]
    answer = served(penguins_home, 1, records)
    np.testing.assert_allclose(np.array(table["probabilities"]), answer["probabilities"], atol=1e-5)
    assert table["predicted_class"] == [c.decode() for c in answer["classes"]]
    first = tf.io.gfile.glob(f"{penguins_examples}/*/*.tfrecord.gz")
    assert table["file"][0] == sorted(first)[0]
    assert table["line"][:3] == [1, 2, 3]
    metadata = pq.read_schema(next(out.glob("part-*.parquet"))).metadata
    assert json.loads(metadata[b"tfpipe.classes"]) == list(task_of(Schema.read(penguins_examples)).classes)
    assert predict.PredictResult.read(str(out)) == result


def test_a_shard_cut_short_fails_the_run_naming_it_and_leaves_no_output(penguins_home, penguins_examples, tmp_path):
    """Batches before the cut are read, scored and written on their threads while the error is met; it reaches
    the caller, and the output folder is not left half-written."""
    examples = shutil.copytree(penguins_examples, tmp_path / "examples")
    shard = max(examples.glob("*/*.tfrecord.gz"), key=lambda p: p.stat().st_size)
    shard.write_bytes(shard.read_bytes()[:-20])
    out = tmp_path / "preds"
    with pytest.raises(ExamplesError, match=f"{shard}: not a whole GZIP TFRecord file"):
        predict.run(PredictConfig(batch_size=10), model.resolve(penguins_home, 1), str(out), examples=str(examples))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["examples"]


def reviews_csv(path: Path, count: int = 300) -> tuple[Path, list[list]]:
    rows = reviews.rows(count)
    rows[4][2] = "many"  # helpful_votes: not an integer
    rows[9][4] = ""  # no label: scored all the same
    write_csv(path, reviews.HEADER, rows)
    return path, rows


@pytest.mark.parametrize("engine", ["local", "beam"])
def test_a_source_is_typed_as_ingest_types_it_keyed_and_its_bad_rows_rejected_not_scored(
        reviews_home, tmp_path, engine):
    source, rows = reviews_csv(tmp_path / "new.csv")
    out = tmp_path / "preds"
    cfg = PredictConfig(keep=("product", "sentiment"), engine=engine, batch_size=64)
    result = predict.run(cfg, model.resolve(reviews_home, 1), str(out), source=str(source),
                         beam=BeamConfig(workers=2))
    table = scored(out)
    assert result.rows == len(rows) - 1
    assert result.rejected == 1
    assert sorted(table["review_id"]) == sorted(r[0] for i, r in enumerate(rows) if i != 4)
    by_key = dict(zip(table["review_id"], zip(table["product"], table["sentiment"], strict=True), strict=True))
    assert by_key[rows[0][0]] == (rows[0][1], rows[0][4])
    assert by_key[rows[9][0]] == (rows[9][1], None)
    [bad] = [json.loads(line) for line in (out / "_rejected.jsonl").read_text().splitlines()]
    assert bad["line"] == 6
    assert "'helpful_votes'" in bad["reason"]
    assert "many" in bad["reason"]
    assert bad["raw"] == ",".join(str(v) for v in rows[4])
    assert bad["file"] == str(source)


def test_a_source_scores_as_its_ingested_examples_do(reviews_home, reviews_examples, tmp_path):
    """The same rows, read from the source or from what ingest wrote of it, get the same predictions."""
    source = reviews.write(tmp_path / "reviews.csv", count=1500)
    from_source, from_examples = tmp_path / "a", tmp_path / "b"
    version = model.resolve(reviews_home, 1)
    predict.run(PredictConfig(), version, str(from_source), source=str(source))
    predict.run(PredictConfig(), version, str(from_examples), examples=reviews_examples)
    a, b = scored(from_source), scored(from_examples)
    order_a, order_b = np.argsort(a["review_id"]), np.argsort(b["review_id"])
    np.testing.assert_array_equal(np.array(a["review_id"])[order_a], np.array(b["review_id"])[order_b])
    np.testing.assert_allclose(np.array(a["probabilities"])[order_a], np.array(b["probabilities"])[order_b],
                               atol=1e-5)


def test_files_are_sharded_by_rows_and_read_back_whole(penguins_home, penguins_examples, tmp_path):
    out = tmp_path / "preds"
    result = predict.run(PredictConfig(rows_per_file=100), model.resolve(penguins_home, 1), str(out),
                         examples=penguins_examples)
    parts = sorted(out.glob("part-*.parquet"))
    assert result.files == len(parts) > 2
    assert all(pq.ParquetFile(p).metadata.num_rows <= 100 for p in parts)
    assert len(scored(out)["line"]) == result.rows
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("_")) == ["_predict.json", "_rejected.jsonl"]


def test_a_source_where_every_row_is_rejected_still_reads_back_as_an_empty_table(penguins_home, tmp_path):
    source = write_csv(tmp_path / "bad.csv", ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                               "body_mass_g", "sex", "year"],
                       [["Biscoe", "long", 18, 181, 3750, "male", 2007]])
    out = tmp_path / "preds"
    result = predict.run(PredictConfig(), model.resolve(penguins_home, 1), str(out), source=str(source))
    assert (result.rows, result.rejected) == (0, 1)
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert "probabilities" in table.column_names


def test_the_source_reader_options_come_from_the_ingest_section(penguins_home, tmp_path):
    path = tmp_path / "penguins.tsv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex",
                         "year"])
        writer.writerow(["Biscoe", 45.1, 14.5, 215, 5000, "female", 2007])
    ingest = IngestConfig(csv=IngestConfig().csv.__class__(delimiter="\t"))
    result = predict.run(PredictConfig(), model.resolve(penguins_home, 1), str(tmp_path / "p"), source=str(path),
                         ingest=ingest)
    assert result.rows == 1


def test_the_beam_engine_scores_the_examples_shard_by_shard_as_the_local_engine_does(penguins_home,
                                                                                      penguins_examples, tmp_path):
    version = model.resolve(penguins_home, 1)
    local = predict.run(PredictConfig(batch_size=64), version, str(tmp_path / "local"), examples=penguins_examples)
    beam = predict.run(PredictConfig(batch_size=64, engine="beam"), version, str(tmp_path / "beam"),
                       examples=penguins_examples, beam=BeamConfig(workers=2))
    assert local.files == 1 < beam.files  # a file from each shard that holds rows
    assert beam.rows == local.rows

    def by_row(out: Path) -> dict:
        table = scored(out)
        return {(f, line): p for f, line, p in zip(table["file"], table["line"], table["probabilities"], strict=True)}

    assert by_row(tmp_path / "beam") == by_row(tmp_path / "local")
