"""Metrics per slice of the test split: a model that is good on average can fail one group.

By default every string feature is sliced by its values and every number by
`numeric_bins` quantile bins of the test split; `evaluate.slices` names the
features instead. Each slice reports its example count and the scalar
metrics of `components.evaluate.metrics` (no curves). A missing string value
(read as "") is its own slice, labelled "(missing)": a model often fails
exactly there, and a blank label would hide it.

Which slices a feature has is settled before the metrics pass, by a
`Profile` of the test split in bounded memory, mergeable like the metric
accumulators: per number a uniform sample of at most `SAMPLE_SIZE` values
(the smallest random priorities kept), whose quantiles are the bin edges,
exactly the split's own when it has no more rows than that, and within a
fraction of a percent of their rank otherwise; per string the counts of its
values, pruned to the most frequent when a feature has far more values than
slices are kept, so the `MAX_VALUES` most frequent are the slices. Numbers
outside the sample's range fall in the first or last bin.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from components.common.config import EvaluateConfig
from components.common.page import shown
from components.common.schema import LIST_TYPES, Schema
from components.evaluate.gate import EvaluateError

if TYPE_CHECKING:
    from components.evaluate.stream import Batch

MAX_VALUES = 20  # string slices per feature, most frequent first
SAMPLE_SIZE = 100_000  # numbers kept per feature for the quantile bin edges
_PRUNE_FACTOR = 50  # distinct string values kept per feature, times MAX_VALUES, before the rarest go


def features_to_slice(schema: Schema, cfg: EvaluateConfig) -> list[str]:
    """Numbers and categories: an image, a text or a list is a value of its own, which groups nothing."""
    sliceable = {f.name: f for f in schema.inputs if f.type not in ("image", "text") and not f.is_list}
    if not cfg.slices:
        return list(sliceable)
    for name in cfg.slices:
        if name not in sliceable:
            raise EvaluateError(f"evaluate.slices: {name!r} is not a feature that can be sliced; expected one of "
                                f"{sorted(sliceable)}")
    return list(cfg.slices)


def why_none(schema: Schema) -> str:
    """Why a model has no slices: `features_to_slice` finds none only when every input is an image, text or list."""
    kinds = [f"{kind} ({', '.join(f.name for f in schema.inputs if f.type in ftypes)})"
             for kind, ftypes in (("images", ("image",)), ("text", ("text",)), ("lists", LIST_TYPES))
             if any(f.type in ftypes for f in schema.inputs)]
    return (f"Not sliced: the model reads only {' and '.join(kinds)}, and slices group examples by the values of "
            "tabular features.")


@dataclass(frozen=True, eq=False)
class FeatureSlices:
    """One feature's slices: quantile bins of a number (`edges`) or the most frequent values of a string."""

    name: str
    labels: tuple[str, ...]
    edges: np.ndarray | None = None
    values: tuple = ()  # as read (bytes)

    def assign(self, column: np.ndarray) -> np.ndarray:
        """Each value's slice index, -1 for a string value that is not one of the slices."""
        if self.edges is None:
            index = {value: i for i, value in enumerate(self.values)}
            return np.fromiter((index.get(value, -1) for value in column), np.int64, len(column))
        if len(self.edges) == 1:
            return np.zeros(len(column), np.int64)
        return np.clip(np.searchsorted(self.edges, column, side="right") - 1, 0, len(self.edges) - 2)


@dataclass
class Sample:
    """A uniform sample of at most SAMPLE_SIZE values: those of the smallest random priorities, kept in parts
    that are cut back to SAMPLE_SIZE once they hold twice as many (so each value is copied a few times at most)."""

    parts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (values, priorities)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def add(self, values: np.ndarray) -> None:
        self.parts.append((values, self.rng.random(len(values))))
        self._cut(2 * SAMPLE_SIZE)

    def merge(self, other: Sample) -> Sample:
        self.parts += other.parts
        self._cut(2 * SAMPLE_SIZE)
        return self

    def values(self) -> np.ndarray:
        self._cut(0)
        return self.parts[0][0] if self.parts else np.zeros(0)

    def _cut(self, above: int) -> None:
        if sum(len(v) for v, _ in self.parts) <= above and len(self.parts) < 1000:
            return
        values, priorities = (np.concatenate(a) for a in zip(*self.parts))
        if len(values) > SAMPLE_SIZE:
            keep = np.argpartition(priorities, SAMPLE_SIZE)[:SAMPLE_SIZE]
            values, priorities = values[keep], priorities[keep]
        self.parts = [(values, priorities)]


@dataclass
class Profile:
    """The first pass over the test split: what each sliced feature's values are, in bounded memory."""

    numbers: dict[str, Sample]
    strings: dict[str, Counter]

    @classmethod
    def empty(cls, schema: Schema, features: list[str]) -> Profile:
        numeric = {name: schema.feature(name).is_numeric for name in features}
        return cls({name: Sample() for name in features if numeric[name]},
                   {name: Counter() for name in features if not numeric[name]})

    def add(self, batch: Batch) -> None:
        self.add_columns(batch.columns)

    def add_columns(self, columns: dict[str, np.ndarray]) -> None:
        for name, sample in self.numbers.items():
            sample.add(columns[name])
        for name, counts in self.strings.items():
            counts.update(columns[name])
            _prune(counts)

    def merge(self, other: Profile) -> Profile:
        for name, sample in self.numbers.items():
            sample.merge(other.numbers[name])
        for name, counts in self.strings.items():
            counts.update(other.strings[name])
            _prune(counts)
        return self

    def slices(self, features: list[str], bins: int) -> tuple[FeatureSlices, ...]:
        return tuple(self._numeric(name, bins) if name in self.numbers else self._string(name) for name in features)

    def _numeric(self, name: str, bins: int) -> FeatureSlices:
        edges = np.unique(np.quantile(self.numbers[name].values(), np.linspace(0, 1, bins + 1)))
        if len(edges) == 1:
            return FeatureSlices(name, (f"{edges[0]:.4g}",), edges)
        labels = tuple(f"[{edges[b]:.4g}, {edges[b + 1]:.4g}{']' if b == len(edges) - 2 else ')'}"
                       for b in range(len(edges) - 1))
        return FeatureSlices(name, labels, edges)

    def _string(self, name: str) -> FeatureSlices:
        ranked = sorted(self.strings[name].items(), key=lambda item: (-item[1], _text(item[0])))
        values = tuple(value for value, _ in ranked[:MAX_VALUES])
        return FeatureSlices(name, tuple(shown(_text(v)) for v in values), values=values)


def _prune(counts: Counter) -> None:
    if len(counts) > MAX_VALUES * _PRUNE_FACTOR:
        kept = counts.most_common(MAX_VALUES * _PRUNE_FACTOR // 2)
        counts.clear()
        counts.update(dict(kept))


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def compute(schema: Schema, cfg: EvaluateConfig, features: dict[str, np.ndarray],
            score: Callable[[np.ndarray], dict]) -> list[dict]:
    """One row per slice of examples held in memory: feature, slice, count and `score(mask)`'s metrics."""
    names = features_to_slice(schema, cfg)
    profile = Profile.empty(schema, names)
    profile.add_columns({name: features[name].reshape(-1) for name in names})
    rows = []
    for feature in profile.slices(names, cfg.numeric_bins):
        index = feature.assign(features[feature.name].reshape(-1))
        for i, label in enumerate(feature.labels):
            mask = index == i
            if mask.any():
                rows.append({"feature": feature.name, "slice": label, "count": int(mask.sum()), "metrics": score(mask)})
    return rows
