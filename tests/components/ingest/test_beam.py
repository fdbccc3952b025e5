"""The Beam engine and the local engine give the same examples, splits, schema, statistics and rejected rows."""

import dataclasses
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format

from components.common.config import BeamConfig, ImageOptions, IngestConfig
from components.common.metadata import DataMetadata
from components.ingest import IngestError, run
from components.ingest.split import SPLITS
from components.ingest.stats import Statistics
from tests.conftest import ROOT, people_rows, write_csv

# Beam on threads in this process: its bundles, units and accumulator merges, without starting TensorFlow twice more.
THREADS = BeamConfig(workers=2, options=("--direct_running_mode=multi_threading",))
# Means and standard deviations are sums gathered in another order: equal up to rounding.
REL = 1e-9
VOLATILE = {"seconds", "rows_per_second"}


def write_sources(folder) -> dict[str, tuple[str, dict]]:
    """One source of each format with bad rows, and the config that reads it."""
    header, rows = people_rows(700, seed=3)
    bad = [["701", "abc", "1.5", "Oslo", "1"], ["702", "30", "2.5", "Lima", ""], ["703", "40", "1e999", "Paris", "0"]]
    csv = write_csv(folder / "people.csv", header, rows[:300] + bad + rows[300:])
    with open(csv, "a") as f:
        f.write("704,1,2,3,4,5\n")
    typed = rows + [[801, 30, math.nan, "Oslo", 1], [802, 31, 1.0, "Lima", None]]
    pq.write_table(pa.table({name: [r[i] for r in typed] for i, name in enumerate(header)}),
                   folder / "people.parquet", row_group_size=100)
    jsonl = folder / "jsonl"  # two files: a unit each
    jsonl.mkdir()
    lines = [json.dumps(dict(zip(header, r, strict=True))) for r in rows]
    (jsonl / "a.jsonl").write_text("\n".join(lines[:200] + ["{not json", '{"id": 9, "age": "x", "label": 1}']) + "\n")
    (jsonl / "b.jsonl").write_text("\n".join(lines[200:]) + "\n")
    return {
        "csv": (str(csv), {"key": "id"}),
        "parquet": (str(folder / "people.parquet"), {"key": "id"}),
        "jsonl": (str(jsonl), {"key": "id"}),
        "images": (str(write_images(folder / "images")), {"image": ImageOptions(grayscale=True)}),
    }


def write_images(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(9):
            Image.fromarray(rng.integers(0, 255, (6, 5), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "cat" / "small.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    return folder, write_sources(folder)


@pytest.fixture(scope="module", params=["csv", "parquet", "jsonl", "images"])
def both(request, data):
    """The same source ingested by each engine: (local output, Beam output, their results)."""
    folder, sources = data
    source, options = sources[request.param]
    cfg = IngestConfig(source=source, batch_rows=128, max_rejected_fraction=0.1, **options)
    local = run(cfg, str(folder / f"{request.param}-local"))
    beam = run(dataclasses.replace(cfg, engine="beam"), str(folder / f"{request.param}-beam"), THREADS)
    return folder / f"{request.param}-local", folder / f"{request.param}-beam", local, beam


def records(out) -> dict[str, list[bytes]]:
    import tensorflow as tf

    return {split: sorted(tf.data.TFRecordDataset(sorted(str(p) for p in (out / split).iterdir()),
                                                  compression_type="GZIP").as_numpy_iterator())
            for split in ("train", "eval", "test")}


def assert_close(a, b, where=""):
    """Equal, but floats only up to REL; keys in VOLATILE are left out."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert set(a) - VOLATILE == set(b) - VOLATILE, where
        for key in set(a) - VOLATILE:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not math.isnan(a):
        assert b == pytest.approx(a, rel=REL, abs=1e-12), where
    else:
        assert a == b, where


def test_engines_write_the_same_examples_in_the_same_splits(both):
    local_out, beam_out, local, beam = both
    assert (beam.rows, beam.rejected, beam.splits) == (local.rows, local.rejected, local.splits)
    assert local.rows > 0
    assert records(beam_out) == records(local_out)
    assert sorted(p.relative_to(beam_out) for p in beam_out.rglob("*")) == \
        sorted(p.relative_to(local_out) for p in local_out.rglob("*"))


def test_engines_write_the_same_schema_and_statistics(both):
    local_out, beam_out, *_ = both
    assert (beam_out / "schema.pbtxt").read_text() == (local_out / "schema.pbtxt").read_text()
    for name in ("schema.json", "stats.json"):
        assert_close(json.loads((local_out / name).read_text()), json.loads((beam_out / name).read_text()), name)
    stats = [json_format.MessageToDict(DataMetadata.read(str(out)).statistics) for out in (local_out, beam_out)]
    assert_close(*stats, "stats.pb")


def test_engines_reject_the_same_rows(both):
    local_out, beam_out, local, _ = both
    # PIL names the in-memory file it could not read by its address, which differs from run to run.
    rejected = [sorted(re.sub(r" at 0x[0-9a-f]+", "", line) for line in (out / "rejected.jsonl").open())
                for out in (local_out, beam_out)]
    assert rejected[0] == rejected[1]
    assert len(rejected[0]) == local.rejected > 0


@pytest.mark.slow
def test_too_many_rejected_rows_fail_on_the_default_runner_and_leave_no_output(tmp_path):
    header, rows = people_rows(200)
    for row in rows[::4]:
        row[1] = "not a number"
    source = write_csv(tmp_path / "dirty.csv", header, rows)
    kept = {}
    for engine in ("local", "beam"):
        out = tmp_path / engine
        with pytest.raises(IngestError, match=r"50 of 200 rows rejected \(25.0%\), more than "
                                              r"ingest.max_rejected_fraction=0.1"):
            run(IngestConfig(source=str(source), engine=engine, types={"age": "int"}, batch_rows=32,
                             max_rejected_fraction=0.1), str(out))
        assert not out.exists()
        assert not list(tmp_path.glob(f"{engine}.staging-*"))
        kept[engine] = sorted((tmp_path / f"{engine}.rejected.jsonl").read_text().splitlines())
    assert kept["beam"] == kept["local"]
    assert len(kept["local"]) == 50


# What a worker process of the multi-process runner runs: every unit through Ingest, the statistics' CombineFn,
# every shard through Concatenate. It prints the rows gathered and the TensorFlow modules it loaded.
WORKER = """
import json, os, sys
import apache_beam as beam
from components.common.config import IngestConfig
from components.ingest import batch, beam_engine, sources, split
from components.ingest.stats import Statistics

cfg = IngestConfig(source=sys.argv[1], key="id", batch_rows=64, shards=2)
types = {"id": "int", "age": "int", "income": "float", "city": "string", "label": "int"}
plan = batch.Plan(types, types, "label", "id", cfg.split)
work = beam_engine.units(sources.resolve(cfg), 3, cfg)
ingest = beam_engine.Ingest(sys.argv[2], plan, cfg)
rows = [out.value for unit in work for out in ingest.process(unit) if isinstance(out, beam.pvalue.TaggedOutput)]
gather = beam_engine.Gather(Statistics(types, "label", cfg.vocab_top_n, rows[0][0]))
parts = [gather.add_input(gather.create_accumulator(), r) for r in rows]
stats = gather.extract_output(gather.merge_accumulators(parts))
concatenate = beam_engine.Concatenate(sys.argv[2], len(work), cfg.shards)
for target in [(name, s) for name in split.SPLITS for s in range(cfg.shards)] + [(beam_engine.REJECTED, 0)]:
    concatenate.process(target, [])
print(json.dumps({"rows": stats.rows, "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")}))
sys.stdout.flush()
os._exit(0)  # as a worker ends (components.common.beam_workers): at the interpreter's teardown, Arrow's pool
# threads abort it now and then ("terminate called without an active exception": 1 run in 50 on busy cores)
"""


def test_a_worker_ingests_without_loading_tensorflow(tmp_path):
    """Loading TensorFlow took each worker process seconds: typing, splitting, encoding, writing parts,
    gathering statistics and concatenating shards need none of it."""
    import tensorflow as tf

    header, rows = people_rows(500)
    source = write_csv(tmp_path / "people.csv", header, rows)
    stage = tmp_path / "stage"
    done = subprocess.run([sys.executable, "-c", WORKER, str(source), str(stage)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    printed = json.loads(done.stdout.splitlines()[-1])
    assert printed == {"rows": 500, "tensorflow": []}
    spec = {"id": tf.io.FixedLenFeature([], tf.int64), "city": tf.io.FixedLenFeature([], tf.string)}
    back = {}
    for name in SPLITS:
        shards = sorted(str(p) for p in (stage / name).glob("data-*-of-00002.tfrecord.gz"))
        assert len(shards) == 2
        for record in tf.data.TFRecordDataset(shards, compression_type="GZIP").as_numpy_iterator():
            parsed = tf.io.parse_single_example(record, spec)
            back[int(parsed["id"])] = parsed["city"].numpy().decode()
    assert back == {row[0]: row[3] for row in rows}
    assert (stage / "rejected.jsonl").read_text() == ""


def test_statistics_merged_in_any_order_equal_one_pass():
    """Beam's accumulators: batches gathered apart and merged in any order count what one pass counts."""
    rng = np.random.default_rng(5)
    batches = [pa.table({"x": rng.normal(center, 10 ** rng.integers(0, 4), 300), "n": rng.integers(-50, 900, 300),
                         "label": pa.array(rng.choice([b"a", b"b", b"c"], 300))})
               for center in (0, -4_000, 70_000, 3, 1e6)]
    splits = [rng.integers(0, 3, 300).astype(np.int8) for _ in batches]
    assert_merged_in_any_order_equal_one_pass({"x": "float", "n": "int", "label": "string"}, batches, splits,
                                              ([4, 0, 3, 1, 2], [1, 2, 3, 4, 0]))


def assert_merged_in_any_order_equal_one_pass(types: dict[str, str], batches: list[pa.Table], splits: list,
                                              orders) -> None:
    """Statistics of each batch apart, merged in each of `orders`, equal one pass over all of them (the bins
    fixed from the first batch's first 100 rows, as the sample fixes them)."""
    one_pass = Statistics(types, "label", 10, batches[0].slice(0, 100))
    parts = []
    for table, where in zip(batches, splits, strict=True):
        one_pass.update(table, where, SPLITS)
        part = Statistics(types, "label", 10, batches[0].slice(0, 100))
        part.update(table, where, SPLITS)
        parts.append(part)
    for order in orders:
        merged = Statistics(types, "label", 10, batches[0].slice(0, 100))
        for i in order:
            merged.merge(parts[i])
        assert_close(one_pass.column_dicts(), merged.column_dicts())
        assert (merged.split_rows, merged.split_labels) == (one_pass.split_rows, one_pass.split_labels)
