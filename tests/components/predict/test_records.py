"""The examples reader of batch scoring: the records tf.data reads, in order, from one or several GZIP members."""

from __future__ import annotations

import pytest
import tensorflow as tf

from components.common.errors import ExamplesError
from components.predict import records


def written(path, values: list[bytes]) -> str:
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for value in values:
            writer.write(value)
    return str(path)


def test_a_shard_of_several_gzip_members_reads_as_tf_data_reads_it_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "PIECE", 300)  # records and members straddle the pieces inflated
    first = [f"record {i} ".encode() * (i % 7) for i in range(500)]
    second = [bytes(range(256)) * 3, b"", b"last"]
    shard = tmp_path / "data-00000-of-00001.tfrecord.gz"
    shard.write_bytes(open(written(tmp_path / "a", first), "rb").read() + open(written(tmp_path / "b", second),
                                                                                  "rb").read())
    expected = [r.numpy() for r in tf.data.TFRecordDataset(str(shard), compression_type="GZIP")]
    read = list(records.batches(str(shard), 64))
    assert [len(b) for b in read] == [64] * 7 + [503 - 448]
    assert [r for b in read for r in b] == expected == first + second
    assert list(records.batches(written(tmp_path / "empty", []), 64)) == []


def test_a_shard_cut_short_or_not_gzip_is_named(tmp_path):
    whole = open(written(tmp_path / "whole", [b"x" * 5000] * 20), "rb").read()
    cut = tmp_path / "cut.tfrecord.gz"
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ExamplesError, match=r"cut.tfrecord.gz: not a whole GZIP TFRecord file "
                                            r"\(Compressed file ended before the end-of-stream"):
        list(records.batches(str(cut), 8))
    plain = tmp_path / "plain.tfrecord.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(ExamplesError, match=r"plain.tfrecord.gz: not a whole GZIP TFRecord file \(Not a gzipped"):
        list(records.batches(str(plain), 8))
