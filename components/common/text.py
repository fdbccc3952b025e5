"""What a token of a `text` feature is: one rule for ingest's statistics, the monitor and the model.

The model's default encoding is a Keras `TextVectorization` with its default
standardisation and split (`STANDARDIZE`, `SPLIT`): ASCII letters lower-cased
(`tf.strings.lower` leaves other letters as they are), the punctuation in
`PUNCTUATION` removed, then split on runs of ASCII whitespace. `tokens` does
the same with Arrow compute (ASCII lower-casing, the same RE2 pattern, ASCII
whitespace), so that the top tokens the statistics count are the tokens the
model looks up, and drift in them is drift in what the model sees.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STANDARDIZE = "lower_and_strip_punctuation"
SPLIT = "whitespace"
# Keras' DEFAULT_STRIP_REGEX (keras.layers.TextVectorization), character for character.
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
_TOKEN = r"[^\t\n\v\f\r ]+"  # a run of anything but ASCII whitespace (RE2's \S leaves out \v)


def tokens(col: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Every token of the UTF-8 values of `col` (binary or string) in order, and how many each value holds
    (0 for a missing one)."""
    text = pc.replace_substring_regex(pc.ascii_lower(pc.cast(col, pa.string())), PUNCTUATION, "")
    flat = pc.list_flatten(pc.ascii_split_whitespace(text))
    counts = pc.fill_null(pc.count_substring_regex(text, _TOKEN), 0).to_numpy(zero_copy_only=False)
    return flat.filter(pc.not_equal(flat, "")), counts
