"""A row's split depends on its key alone: not on order, batch size, shards, threads or format."""

import numpy as np
import pyarrow as pa

from components.common.config import IngestConfig, SplitRatios
from components.ingest import run, split
from components.ingest.farmhash import fingerprint64
from tests.conftest import all_rows, people_rows, read_examples, write_csv


def membership(out):
    return {k: v["_split"] for k, v in all_rows(read_examples(out), "id").items()}


def test_same_split_across_runs_shards_threads_and_order(tmp_path):
    header, rows = people_rows(3000)
    a = write_csv(tmp_path / "a.csv", header, rows)
    shuffled = [rows[i] for i in np.random.default_rng(7).permutation(len(rows))]
    b = write_csv(tmp_path / "b.csv", header, shuffled)
    first = run(IngestConfig(source=str(a), key="id"), str(tmp_path / "1"))
    run(IngestConfig(source=str(a), key="id"), str(tmp_path / "2"))
    run(IngestConfig(source=str(a), key="id", shards=5, threads=1, batch_rows=100), str(tmp_path / "3"))
    run(IngestConfig(source=str(b), key="id", shards=1), str(tmp_path / "4"))
    reference = membership(tmp_path / "1")
    assert set(reference.values()) == {"train", "eval", "test"}
    for other in ("2", "3", "4"):
        assert membership(tmp_path / other) == reference
    assert first.splits == {s: sum(1 for v in reference.values() if v == s) for s in ("train", "eval", "test")}


def test_files_are_identical_between_runs(tmp_path, people_csv):
    for name in ("x", "y"):
        run(IngestConfig(source=str(people_csv), threads=2, batch_rows=50), str(tmp_path / name))
    for path in sorted((tmp_path / "x").glob("*/*.tfrecord.gz")):
        import gzip

        other = tmp_path / "y" / path.relative_to(tmp_path / "x")
        assert gzip.decompress(path.read_bytes()) == gzip.decompress(other.read_bytes())


def test_known_hash_values_do_not_change():
    # Pinned: a change here would move rows between splits for every existing user.
    keys = pa.array([str(i).encode() for i in range(20)])
    assert split.assign(keys, SplitRatios()).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    import tensorflow as tf

    # FarmHash Fingerprint64("hello"), the published value, by TensorFlow and by the hash splits use.
    assert int(tf.fingerprint(tf.constant([b"hello"])).numpy().view("<u8")[0, 0]) == 13009744463427800296
    assert fingerprint64(pa.array([b"hello"])).tolist() == [13009744463427800296]


def test_fingerprint64_is_tensorflows_for_every_length_branch():
    """Each length branch of FarmHash (0, 1-3, 4-7, 8-16, 17-32, 33-64, and one or more 64-byte blocks), on
    random bytes and on text, and on an array that is a slice of a larger one (its offsets start past 0)."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    values = [rng.bytes(n) for n in range(300)] + [rng.bytes(int(n)) for n in rng.integers(0, 700, 500)]
    values += ["é,\x1f{n}".encode() * n for n in range(40)]
    strings = pa.array([b"pad"] + values, pa.binary()).slice(1)
    expected = tf.fingerprint(tf.constant(np.asarray(values, dtype=object))).numpy().view("<u8").reshape(-1)
    assert fingerprint64(strings).tolist() == expected.tolist()
    assert fingerprint64(pa.array([], pa.binary())).tolist() == []
