"""GZIP TFRecord files written without TensorFlow hold what TensorFlow's own writer writes, and tf.data reads them."""

import gzip

import numpy as np

from components.ingest.tfrecord import GzipRecordWriter


def test_records_read_back_and_frame_as_tensorflow_frames_them(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    batches = [[rng.bytes(int(n)) for n in rng.integers(0, 3000, 200)], [], [b""], [rng.bytes(70_000)]]
    ours = tmp_path / "ours.tfrecord.gz"
    writer = GzipRecordWriter(str(ours))
    for records in batches:
        writer.write(np.asarray(records, dtype=object))
    writer.close()
    theirs = tmp_path / "theirs.tfrecord.gz"
    with tf.io.TFRecordWriter(str(theirs), tf.io.TFRecordOptions(compression_type="GZIP")) as reference:
        for record in (r for records in batches for r in records):
            reference.write(record)

    flat = [r for records in batches for r in records]
    assert list(tf.data.TFRecordDataset(str(ours), compression_type="GZIP").as_numpy_iterator()) == flat
    assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs.read_bytes())


def test_a_file_with_no_records_is_an_empty_gzip_tfrecord_file(tmp_path):
    import tensorflow as tf

    path = tmp_path / "empty.tfrecord.gz"
    GzipRecordWriter(str(path)).close()
    assert gzip.decompress(path.read_bytes()) == b""
    assert list(tf.data.TFRecordDataset(str(path), compression_type="GZIP")) == []
