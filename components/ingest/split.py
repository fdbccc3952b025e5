"""Train / eval / test by a stable hash of each row's key.

The hash is TensorFlow's FarmHash Fingerprint64 (`tf.fingerprint`), which is
documented as stable across platforms and releases. A row's split depends only
on its key text and the ratios: not on the order of rows, the batch size, the
number of shards or threads, or the machine. TensorFlow is imported when a
split is first assigned, so that a bad source or config is reported without
waiting for it to load.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

SPLITS = ("train", "eval", "test")
BUCKETS = 10_000


def assign(keys: pa.Array, ratios) -> np.ndarray:
    """The split index (0 train, 1 eval, 2 test) of each key."""
    import tensorflow as tf

    if len(keys) == 0:
        return np.zeros(0, np.int8)
    text = tf.constant(np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object), dtype=tf.string)
    digest = tf.fingerprint(text, method="farmhash64").numpy()
    buckets = digest.view("<u8").reshape(-1) % BUCKETS
    edges = np.cumsum([ratios.train, ratios.eval]) * BUCKETS
    return np.searchsorted(edges, buckets, side="right").astype(np.int8)
