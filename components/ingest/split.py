"""Train / eval / test by a stable hash of each row's key.

The hash is FarmHash Fingerprint64, which TensorFlow documents as stable
across platforms and releases (`tf.fingerprint`), computed here in numpy
(`farmhash.fingerprint64`, tested equal to TensorFlow's) so that no
process that ingests has to load TensorFlow for it. A row's split depends
only on its key text and the ratios: not on the order of rows, the batch
size, the number of shards or threads, or the machine.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from components.ingest.farmhash import fingerprint64

SPLITS = ("train", "eval", "test")
BUCKETS = 10_000


def assign(keys: pa.Array, ratios) -> np.ndarray:
    """The split index (0 train, 1 eval, 2 test) of each key."""
    buckets = fingerprint64(keys) % BUCKETS
    edges = np.cumsum([ratios.train, ratios.eval]) * BUCKETS
    return np.searchsorted(edges, buckets, side="right").astype(np.int8)
