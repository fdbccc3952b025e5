"""Statistics of every column, gathered batch by batch in constant memory.

Numbers: count, missing, min, max, mean and standard deviation (batch moments
merged with Chan's parallel update, which stays accurate over millions of
rows), a histogram over bin edges fixed from the sample that typing looked at
(what validation compares), and exact counts in equal-width bins (what the
report draws).
Strings: counts of each value, pruned to the most frequent when a column has
far more distinct values than the report keeps.
Text: its length in UTF-8 bytes and its count of tokens, each as numbers are
(the same histograms), and counts of each token as strings count values, with
the tokens the model's TextVectorization makes (`common.text`).
Lists: their values as a column of their type, and their lengths (values per
row) as numbers.

Every accumulator also merges with another of its kind, so that Beam can
gather them in parallel (`merge`). Bins are fixed before the first batch and
widen as a function of the range seen alone, so counts come out the same
whatever order batches arrive and merge in; only floating-point sums (mean,
std) differ, by rounding.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.common import text

HISTOGRAM_BINS = 20
# Keep at most this many distinct values per string column, times top_n.
_PRUNE_FACTOR = 50


@dataclass
class EqualWidthHistogram:
    """Exact counts in HISTOGRAM_BINS equal-width bins that widen to take in every value.

    Bins are fitted to the first values seen (the sample): for floats a round
    width (1, 2 or 5 times a power of ten) from a multiple of it, so that the
    axis reads in round numbers; for ints a whole number of values from the
    smallest, with edges halfway between values, so that each bar counts whole
    values. Positions are kept in units of that first width (`unit`) from
    `anchor`. A value outside the bins doubles their width, merging pairs of
    bins, as often as the range needs; the bins' start is the range's low
    end rounded down to a multiple of the width, so the bins depend on the
    range alone, never on the order values came in, and wider bins' edges are
    narrower ones' edges: counts stay exact through widening and merging.
    """

    integer: bool
    anchor: float = 0.0
    unit: float = 0.0
    start: float = 0.0  # first bin's low edge, in units from `anchor`
    doublings: int = 0
    low: float = math.inf  # lowest and highest position seen, in units
    high: float = -math.inf
    counts: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        """Counts `values`; a non-finite one (conform lets none through) has no bin and is left out."""
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        if not self.unit:
            self.fit(float(values.min()), float(values.max()))
        positions = np.floor((values - self.anchor) / self.unit)
        self._cover(float(positions.min()), float(positions.max()))
        self.counts += self._bincount(positions, 1)

    def fit(self, low: float, high: float) -> None:
        if self.integer:
            self.unit = float(math.ceil((high - low + 1) / HISTOGRAM_BINS))
            self.anchor = low - 0.5
        else:
            self.unit = _round_up((high - low) / HISTOGRAM_BINS or abs(low) / HISTOGRAM_BINS or 1.0)

    def merge(self, other: EqualWidthHistogram) -> None:
        if other.counts is None:
            return
        if self.counts is None:
            self.anchor, self.unit = other.anchor, other.unit
            self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self._cover(other.low, other.high)
        self.counts += other._bins_in(self)

    def _cover(self, low: float, high: float) -> None:
        """Widens the bins until they hold positions `low` to `high` as well as those already counted."""
        low, high = min(low, self.low), max(high, self.high)
        if self.counts is not None and (low, high) == (self.low, self.high):
            return
        old = EqualWidthHistogram(self.integer, self.anchor, self.unit, self.start, self.doublings, counts=self.counts)
        self.low, self.high = low, high
        self.doublings = 0
        while True:
            span = 2.0 ** self.doublings
            self.start = math.floor(low / span) * span
            if high < self.start + span * HISTOGRAM_BINS:
                break
            self.doublings += 1
        self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64) if old.counts is None else old._bins_in(self)

    def _bins_in(self, target: EqualWidthHistogram) -> np.ndarray:
        """These counts in `target`'s bins, which are as wide or wider and share their edges."""
        span = 2.0 ** self.doublings
        lows = self.start + span * np.arange(HISTOGRAM_BINS)
        return target._bincount(lows, self.counts)

    def _bincount(self, positions: np.ndarray, weights) -> np.ndarray:
        index = np.floor((positions - self.start) / 2.0 ** self.doublings).astype(np.int64)
        weights = np.broadcast_to(weights, index.shape)
        return np.bincount(np.clip(index, 0, HISTOGRAM_BINS - 1), weights, HISTOGRAM_BINS).astype(np.int64)

    def to_dict(self) -> dict:
        """{"edges", "counts"}: counts[i] lie in [edges[i], edges[i + 1]); empty bins at either end left out."""
        used = np.flatnonzero(self.counts) if self.counts is not None else []
        if len(used) == 0:
            return {"edges": [], "counts": []}
        first, last = used[0], used[-1] + 1
        edges = self.anchor + self.unit * (self.start + 2.0 ** self.doublings * np.arange(first, last + 1))
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

    def fit(self, col: pa.Array) -> None:
        """Fixes the bins from a sample's values: the histogram's edges at its quantiles, the equal-width bins."""
        values = _numbers(col)
        self.edges = np.unique(np.quantile(values, np.linspace(0, 1, HISTOGRAM_BINS + 1))) if values.size \
            else np.zeros(0)
        self.histogram = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.equal_width = EqualWidthHistogram(self.integer)
        finite = values[np.isfinite(values)]
        # A sample without values still fixes the bins (width 1 from 0), so that every copy merges with the others.
        self.equal_width.fit(float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 0.0)

    def update(self, col: pa.Array) -> None:
        """Counts every value it is given, so that count + missing is the number of rows: none drops out unseen."""
        self.missing += col.null_count
        values = _numbers(col)
        if values.size == 0:
            return
        if self.edges is None:
            self.fit(col)
        mean = float(values.mean())
        self._add_moments(values.size, mean, float(((values - mean) ** 2).sum()))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self.histogram += np.bincount(np.searchsorted(self.edges, values, side="right"),
                                      minlength=len(self.histogram))
        self.equal_width.update(values)

    def merge(self, other: NumericStats) -> None:
        self.missing += other.missing
        if other.count == 0:
            return
        self._add_moments(other.count, other.mean, other.m2)
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if self.edges is None:
            self.edges, self.histogram = other.edges, np.zeros_like(other.histogram)
            self.equal_width = EqualWidthHistogram(self.integer)
        self.histogram += other.histogram
        self.equal_width.merge(other.equal_width)

    def _add_moments(self, n: int, mean: float, m2: float) -> None:
        """Chan's parallel update of count, mean and sum of squared deviations."""
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

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
        self._prune()

    def merge(self, other: StringStats) -> None:
        self.count += other.count
        self.missing += other.missing
        self.counts.update(other.counts)
        self.approximate |= other.approximate
        self._prune()

    def _prune(self) -> None:
        if len(self.counts) > self.top_n * _PRUNE_FACTOR:
            self.counts = Counter(dict(self._ranked(self.top_n * _PRUNE_FACTOR // 2)))
            self.approximate = True

    def _ranked(self, n: int) -> list[tuple]:
        """The `n` most frequent values, equal counts in value order: the same whatever order the rows came in."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:n]

    def to_dict(self) -> dict:
        top = [[_text(v), c] for v, c in self._ranked(self.top_n)]
        out = {"count": self.count, "missing": self.missing, "unique": len(self.counts), "top": top}
        if self.approximate:
            out["approximate"] = True
        return out


@dataclass
class TextStats:
    """A text column: the bytes and tokens of each value as two numeric columns, and its tokens as a string one."""

    top_n: int
    length: NumericStats = field(default_factory=lambda: NumericStats(integer=True))
    token_count: NumericStats = field(default_factory=lambda: NumericStats(integer=True))
    tokens: StringStats = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = StringStats(self.top_n)

    def fit(self, col: pa.Array) -> None:
        lengths, counts, _ = _measure(col)
        self.length.fit(lengths)
        self.token_count.fit(counts)

    def update(self, col: pa.Array) -> None:
        lengths, counts, tokens = _measure(col)
        self.length.update(lengths)
        self.token_count.update(counts)
        self.tokens.update(tokens)

    def merge(self, other: TextStats) -> None:
        self.length.merge(other.length)
        self.token_count.merge(other.token_count)
        self.tokens.merge(other.tokens)

    def to_dict(self) -> dict:
        """count and missing count values; `top` and `unique` are tokens, `tokens` how many there were in all."""
        tokens = self.tokens.to_dict()
        out = {"count": self.length.count, "missing": self.length.missing, "unique": tokens["unique"],
               "top": tokens["top"], "tokens": tokens["count"], "length": self.length.to_dict(),
               "token_count": self.token_count.to_dict()}
        if tokens.get("approximate"):
            out["approximate"] = True
        return out


def _measure(col: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Each value's length in bytes and count of tokens (null where the value is), and every token."""
    tokens, counts = text.tokens(col)
    return pc.binary_length(col), pa.array(counts, pa.int64(), mask=col.is_null().to_numpy(zero_copy_only=False)), \
        tokens


@dataclass
class ListStats:
    """A list column: its values as one column of the element type, and the number each row holds as integers."""

    values: NumericStats | StringStats
    length: NumericStats = field(default_factory=lambda: NumericStats(integer=True))

    def fit(self, col: pa.Array) -> None:
        self.length.fit(pc.list_value_length(col))
        if isinstance(self.values, NumericStats):
            self.values.fit(pc.list_flatten(col))

    def update(self, col: pa.Array) -> None:
        self.length.update(pc.list_value_length(col))
        self.values.update(pc.list_flatten(col))

    def merge(self, other: ListStats) -> None:
        self.length.merge(other.length)
        self.values.merge(other.values)

    def to_dict(self) -> dict:
        """count and missing count rows (an empty list is not missing); `values` counts values in all, and the
        rest describes them as a column of their type does."""
        values = self.values.to_dict()
        values.pop("missing")
        return {**values, "count": self.length.count, "missing": self.length.missing, "values": values["count"],
                "length": self.length.to_dict()}


@dataclass
class ImageStats:
    count: int = 0
    missing: int = 0

    def update(self, col: pa.Array) -> None:
        self.missing += col.null_count
        self.count += len(col) - col.null_count

    def merge(self, other: ImageStats) -> None:
        self.count += other.count
        self.missing += other.missing

    def to_dict(self) -> dict:
        return {"count": self.count, "missing": self.missing}


def _numbers(col: pa.Array) -> np.ndarray:
    return col.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)


def _shortest(value: float) -> float:
    """Values were float32: report 32.1, not 32.099998474121094."""
    return float(str(np.float32(value)))


def _text(value: bytes) -> str:
    return value.decode("utf8", "backslashreplace") if isinstance(value, bytes) else str(value)


def _column_stats(ftype: str, top_n: int) -> NumericStats | StringStats | TextStats | ImageStats | ListStats:
    if ftype.endswith("_list"):
        return ListStats(_column_stats(ftype.removesuffix("_list"), top_n))
    if ftype in ("int", "float"):
        return NumericStats(integer=ftype == "int")
    if ftype == "text":
        return TextStats(top_n)
    return ImageStats() if ftype == "image" else StringStats(top_n)


class Statistics:
    """Per-column statistics plus per-split row and label counts.

    `sample`, typed rows seen before the first batch, fixes the numeric
    columns' bins (and those of text lengths), so that every copy made from this one (Beam's
    accumulators) bins alike and merges exactly.
    """

    def __init__(self, types: dict[str, str], label: str, top_n: int, sample: pa.Table | None = None):
        self.label = label
        self.columns = {name: _column_stats(t, top_n) for name, t in types.items()}
        self.split_rows: Counter = Counter()
        self.split_labels: dict[str, Counter] = {}
        for name, stats in self.columns.items():
            if sample is not None and isinstance(stats, NumericStats | TextStats | ListStats):
                stats.fit(sample.column(name).combine_chunks())

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

    def merge(self, other: Statistics) -> Statistics:
        for name, stats in self.columns.items():
            stats.merge(other.columns[name])
        self.split_rows.update(other.split_rows)
        for split, counts in other.split_labels.items():
            self.split_labels.setdefault(split, Counter()).update(counts)
        return self

    @property
    def rows(self) -> int:
        return sum(self.split_rows.values())

    def column_dicts(self) -> dict[str, dict]:
        return {name: stats.to_dict() for name, stats in self.columns.items()}
