"""One window's statistics in ingest's formats: `schema.json`'s per-feature statistics, then stats.pb.

The per-feature statistics are those `components.common.schema.Feature`
documents and ingest writes (numbers: count, missing, min, max, mean, std and
a histogram over quantile edges; strings: count, missing, unique and the most
frequent values; text: its tokens counted as strings' values are, with the
tokens the model looks up (`common.text`), and its bytes and tokens per value
as numbers; lists: their values as a column of their type, and their lengths
as numbers; images: count and missing), computed here over the window's
values, which all fit in memory. `DataMetadata.from_ingest` then turns them
into the same `schema.pbtxt` + `stats.pb` as a training data set's, so a
window compares with training through one format, and TFDV, Facets or
`tfpipe validate` read a window as they read ingest's output.

The label's place holds the model's predictions: what the served model said
the label is. A classifier's predicted classes are also the label counts of
the one split, `serving`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.common import text
from components.common.metadata import DataMetadata
from components.common.schema import Feature, Schema
from components.common.task import Task
from components.monitor.decode import Traffic

HISTOGRAM_BINS = 20  # quantile bins, as ingest's
TOP_VALUES = 100  # string values kept per feature, as ingest's default vocab_top_n
SPLIT = "serving"


def metadata(schema: Schema, task: Task, traffic: Traffic) -> DataMetadata:
    features = [Feature(f.name, f.type, feature_stats(f.type, traffic.values.get(f.name, []), traffic.missing[f.name]),
                        f.image) for f in schema.inputs]
    label = schema.label_feature
    kind = "float" if task.kind == "regression" else label.type  # a regressor predicts numbers, whatever the label
    predicted = feature_stats(kind, traffic.predictions, traffic.missing[label.name])
    if kind == "int" and not traffic.predictions:
        # with no prediction there is no range; the training label's says the classes are few (categorical)
        predicted.update(min=label.stats["min"], max=label.stats["max"])
    window = Schema(features=(*features, Feature(label.name, kind, predicted)), label=label.name,
                    splits={SPLIT: traffic.rows})
    counts = Counter(str(p) for p in traffic.predictions) if task.kind == "classification" else Counter()
    return DataMetadata.from_ingest(window, {SPLIT: counts})


def feature_stats(kind: str, values: list, missing: int) -> dict:
    if kind.endswith("_list"):
        return list_stats(kind.removesuffix("_list"), values, missing)
    if kind in ("int", "float"):
        return numeric_stats(np.asarray(values, dtype=np.float64), missing)
    if kind == "string":
        counts = Counter(values)
        return {"count": len(values), "missing": missing, "unique": len(counts),
                "top": [[v, c] for v, c in counts.most_common(TOP_VALUES)]}
    if kind == "text":
        return text_stats(values, missing)
    return {"count": len(values), "missing": missing}


def text_stats(values: list[str], missing: int) -> dict:
    """Ingest's text statistics: `unique`, `top` and `tokens` count tokens, `length` (bytes) and `token_count`
    are each value's, as numbers."""
    column = pa.array(values, pa.string())
    tokens, per_value = text.tokens(column)
    counted = feature_stats("string", tokens.to_pylist(), 0)
    lengths = pc.binary_length(column).to_numpy(zero_copy_only=False)
    return {"count": len(values), "missing": missing, "unique": counted["unique"], "top": counted["top"],
            "tokens": counted["count"], "length": numeric_stats(lengths.astype(np.float64), missing),
            "token_count": numeric_stats(per_value.astype(np.float64), missing)}


def list_stats(kind: str, lists: list[list], missing: int) -> dict:
    """Ingest's list statistics: `values` counts them in all and the rest describes them as a column of `kind`;
    `length` is each list's, as numbers."""
    values = feature_stats(kind, [v for one in lists for v in one], 0)
    lengths = np.array([len(one) for one in lists], dtype=np.float64)
    return {**values, "count": len(lists), "missing": missing, "values": values["count"],
            "length": numeric_stats(lengths, missing)}


def numeric_stats(values: np.ndarray, missing: int) -> dict:
    """Ingest's numeric statistics: its histogram's counts[0] lies below edges[0], counts[-1] at or above
    edges[-1], over edges at the values' quantiles."""
    if not values.size:
        return {"count": 0, "missing": missing}
    edges = np.unique(np.quantile(values, np.linspace(0, 1, HISTOGRAM_BINS + 1)))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return {"count": int(values.size), "missing": missing, "min": float(values.min()), "max": float(values.max()),
            "mean": float(values.mean()), "std": float(values.std()),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}
