"""Sharded GZIP TFRecord files, one set per split, written from several threads.

Batch i goes to shard i % shards of every split. Writes to one shard happen in
batch order whatever thread finishes first, so the files are the same from run
to run. TensorFlow's record writer compresses outside the GIL, which is what
lets two threads use two cores.
"""

from __future__ import annotations

import threading

import numpy as np


def shard_name(index: int, count: int) -> str:
    return f"data-{index:05d}-of-{count:05d}.tfrecord.gz"


class ShardedWriter:
    def __init__(self, folder: str, splits: tuple[str, ...], shards: int):
        import tensorflow as tf  # here, not at import: a user error is reported before TensorFlow loads

        self.splits = splits
        self.shards = shards
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        for split in splits:
            tf.io.gfile.makedirs(f"{folder}/{split}")
        self._files = [
            [tf.io.TFRecordWriter(f"{folder}/{split}/{shard_name(s, shards)}", options) for s in range(shards)]
            for split in splits
        ]
        self._turn = [0] * shards
        self._ready = threading.Condition()
        self._failed = False

    def write(self, batch_index: int, splits: np.ndarray, records: np.ndarray) -> None:
        """Writes batch `batch_index`, each record to the split named by `splits` (an index into `self.splits`)."""
        shard = batch_index % self.shards
        with self._ready:
            self._ready.wait_for(lambda: self._failed or self._turn[shard] == batch_index // self.shards)
            if self._failed:
                raise RuntimeError("another batch failed; writing stopped")
        try:
            for index, files in enumerate(self._files):
                out = files[shard]
                for record in records[splits == index]:
                    out.write(record)
        finally:
            with self._ready:
                self._turn[shard] += 1
                self._ready.notify_all()

    def fail(self) -> None:
        """Releases every thread waiting for its turn: a batch failed and the output will be discarded."""
        with self._ready:
            self._failed = True
            self._ready.notify_all()

    def close(self) -> None:
        for files in self._files:
            for f in files:
                f.close()
