"""Statistics of every column, gathered batch by batch in constant memory.

Numbers: count, missing, min, max, mean and standard deviation (batch moments
merged with Chan's parallel update, which stays accurate over millions of
rows), a histogram over bin edges fixed from the first batch's quantiles (what
validation compares), and exact counts in equal-width bins (what the report
draws).
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
class EqualWidthHistogram:
    """Exact counts in HISTOGRAM_BINS equal-width bins that widen to take in every value.

    Bins are `width` wide from `origin`, fitted to the first batch: for
    floats a round width (1, 2 or 5 times a power of ten) from a multiple of
    it, so that the axis reads in round numbers; for ints a whole number of
    values from the smallest, with edges halfway between values, so that each
    bar counts whole values. A value outside the bins doubles their width,
    merging pairs of bins (the new edges are old ones, so counts stay exact),
    and when it lies below, first moves the origin down by the old span.
    """

    integer: bool
    origin: float = 0.0
    width: float = 0.0
    counts: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        """Counts `values`; a non-finite one (conform lets none through) has no bin and is left out."""
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if self.counts is None:
            self._fit(low, high)
        while low < self.origin:
            self._widen(downwards=True)
        while high >= self.origin + self.width * HISTOGRAM_BINS:
            self._widen(downwards=False)
        index = ((values - self.origin) // self.width).astype(np.int64)
        self.counts += np.bincount(np.clip(index, 0, HISTOGRAM_BINS - 1), minlength=HISTOGRAM_BINS)

    def _fit(self, low: float, high: float) -> None:
        if self.integer:
            self.width = math.ceil((high - low + 1) / HISTOGRAM_BINS)
            self.origin = low - 0.5
        else:
            self.width = _round_up((high - low) / HISTOGRAM_BINS or abs(low) / HISTOGRAM_BINS or 1.0)
            self.origin = math.floor(low / self.width) * self.width
        self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    def _widen(self, downwards: bool) -> None:
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        empty = np.zeros_like(merged)
        if downwards:
            self.origin -= self.width * HISTOGRAM_BINS
        self.counts = np.concatenate([empty, merged] if downwards else [merged, empty])
        self.width *= 2

    def to_dict(self) -> dict:
        """{"edges", "counts"}: counts[i] lie in [edges[i], edges[i + 1]); empty bins at either end left out."""
        used = np.flatnonzero(self.counts) if self.counts is not None else []
        if len(used) == 0:
            return {"edges": [], "counts": []}
        first, last = used[0], used[-1] + 1
        edges = self.origin + self.width * np.arange(first, last + 1)
        return {"edges": [float(f"{e:.12g}") for e in edges], "counts": self.counts[first:last].tolist()}


def _round_up(step: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least `step`."""
    power = 10.0 ** math.floor(math.log10(step))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= step * (1 - 1e-12))


@dataclass
class NumericStats:
    integer: bool = False
    count: int = 0
    missing: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    edges: np.ndarray | None = None
    histogram: np.ndarray | None = None
    equal_width: EqualWidthHistogram | None = None

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
        if self.equal_width is None:
            self.equal_width = EqualWidthHistogram(self.integer)
        self.equal_width.update(values)

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
            "equal_width": self.equal_width.to_dict(),
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


def _column_stats(ftype: str, top_n: int) -> NumericStats | StringStats | ImageStats:
    if ftype in ("int", "float"):
        return NumericStats(integer=ftype == "int")
    return ImageStats() if ftype == "image" else StringStats(top_n)


class Statistics:
    """Per-column statistics plus per-split row and label counts."""

    def __init__(self, types: dict[str, str], label: str, top_n: int):
        self.label = label
        self.columns = {name: _column_stats(t, top_n) for name, t in types.items()}
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
