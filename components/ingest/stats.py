"""Statistics of every column, gathered batch by batch in constant memory.

Numbers: count, missing, min, max, mean and standard deviation (batch moments
merged with Chan's parallel update, which stays accurate over millions of
rows), and a histogram over bin edges fixed from the first batch's quantiles.
Strings: counts of each value, pruned to the most frequent when a column has
far more distinct values than the report keeps.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HISTOGRAM_BINS = 20
# Keep at most this many distinct values per string column, times top_n.
_PRUNE_FACTOR = 50


@dataclass
class NumericStats:
    count: int = 0
    missing: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    edges: np.ndarray | None = None
    histogram: np.ndarray | None = None

    def update(self, col: pa.Array) -> None:
        """Counts every value it is given, so that count + missing is the number of rows: none drops out unseen."""
        self.missing += col.null_count
        values = col.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        if values.size == 0:
            return
        n, mean = values.size, float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        if self.edges is None:
            self.edges = np.unique(np.quantile(values, np.linspace(0, 1, HISTOGRAM_BINS + 1)))
            self.histogram = np.zeros(max(len(self.edges) + 1, 2), dtype=np.int64)
        idx = np.searchsorted(self.edges, values, side="right")
        self.histogram += np.bincount(idx, minlength=len(self.histogram))[: len(self.histogram)]

    def to_dict(self) -> dict:
        if self.count == 0:
            return {"count": 0, "missing": self.missing}
        return {
            "count": self.count,
            "missing": self.missing,
            "min": _shortest(self.min),
            "max": _shortest(self.max),
            "mean": self.mean,
            "std": math.sqrt(self.m2 / self.count),
            # counts[0] is below edges[0] and counts[-1] at or above edges[-1].
            "histogram": {"edges": [_shortest(e) for e in self.edges], "counts": self.histogram.tolist()},
        }


@dataclass
class StringStats:
    top_n: int
    count: int = 0
    missing: int = 0
    counts: Counter = field(default_factory=Counter)
    approximate: bool = False

    def update(self, col: pa.Array) -> None:
        self.missing += col.null_count
        self.count += len(col) - col.null_count
        for item in pc.value_counts(col.drop_null()).to_pylist():
            self.counts[item["values"]] += item["counts"]
        if len(self.counts) > self.top_n * _PRUNE_FACTOR:
            self.counts = Counter(dict(self.counts.most_common(self.top_n * _PRUNE_FACTOR // 2)))
            self.approximate = True

    def to_dict(self) -> dict:
        top = [[_text(v), c] for v, c in self.counts.most_common(self.top_n)]
        out = {"count": self.count, "missing": self.missing, "unique": len(self.counts), "top": top}
        if self.approximate:
            out["approximate"] = True
        return out


@dataclass
class ImageStats:
    count: int = 0
    missing: int = 0

    def update(self, col: pa.Array) -> None:
        self.missing += col.null_count
        self.count += len(col) - col.null_count

    def to_dict(self) -> dict:
        return {"count": self.count, "missing": self.missing}


def _shortest(value: float) -> float:
    """Values were float32: report 32.1, not 32.099998474121094."""
    return float(str(np.float32(value)))


def _text(value: bytes) -> str:
    return value.decode("utf8", "backslashreplace") if isinstance(value, bytes) else str(value)


class Statistics:
    """Per-column statistics plus per-split row and label counts."""

    def __init__(self, types: dict[str, str], label: str, top_n: int):
        self.label = label
        self.columns = {
            name: NumericStats() if t in ("int", "float") else ImageStats() if t == "image" else StringStats(top_n)
            for name, t in types.items()
        }
        self.split_rows: Counter = Counter()
        self.split_labels: dict[str, Counter] = {}

    def update(self, table: pa.Table, splits: np.ndarray, names: tuple[str, ...]) -> None:
        for name, stats in self.columns.items():
            stats.update(table.column(name).combine_chunks())
        labels = table.column(self.label).combine_chunks()
        for index, split in enumerate(names):
            chosen = labels.filter(pa.array(splits == index))
            self.split_rows[split] += len(chosen)
            counter = self.split_labels.setdefault(split, Counter())
            for item in pc.value_counts(chosen).to_pylist():
                counter[_text(item["values"])] += item["counts"]

    def column_dicts(self) -> dict[str, dict]:
        return {name: stats.to_dict() for name, stats in self.columns.items()}
