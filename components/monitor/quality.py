"""Quality of the served predictions once their labels arrive: each window's predictions joined to the labels by
example key, measured with the evaluate step's accumulators, overall and per slice, against the production
model's blessed evaluation and the `monitor.quality` bounds.

A prediction is joined when its request carried an example key, it is the
last prediction of that key in the windows read (a retried request is scored
once), a label has that key, and the label became known no more than
`monitor.max_label_delay_seconds` after the window ended. Every other
prediction is counted under the reason it was not joined (`LabelCounts`).

Classification: accuracy, balanced accuracy, AUC (the positive class of a
binary label, the micro average of several) and, for a binary label, the
expected calibration error `ece`; regression: RMSE and MAE. A window or a
slice with fewer joined labels than `monitor.min_labels`, or whose metric is
undefined there, is inconclusive: neither crossed nor passed. Slices are the
sliced features' most frequent values, or quartiles of a number's values in
the window, as evaluate slices its test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.common.config import CLASSIFICATION_QUALITY, REGRESSION_QUALITY, Threshold
from components.common.schema import Schema
from components.common.task import Task
from components.evaluate.accumulators import Accumulator, Classification, Regression
from components.evaluate.metrics import LOWER_IS_BETTER
from components.evaluate.slices import FeatureSlices, Profile
from components.monitor.decode import Scored
from components.monitor.errors import MonitorError
from components.monitor.findings import LabelCounts, LabelsRead, Quality, Verdict
from components.monitor.labels import Labels

NUMERIC_BINS = 4  # a number's slices: quartiles of its values in the window
SHOWN_KEYS = 5  # keys listed of the labels no prediction had


def metrics_of(task: Task) -> tuple[str, ...]:
    if task.kind == "regression":
        return REGRESSION_QUALITY
    return CLASSIFICATION_QUALITY if len(task.classes) == 2 else tuple(m for m in CLASSIFICATION_QUALITY
                                                                        if m != "ece")


@dataclass(frozen=True)
class Judge:
    """What a window's quality is measured and judged with."""

    schema: Schema
    task: Task
    labels: Labels
    thresholds: dict[str, Threshold]
    blessed: dict[str, float]  # the production model's blessed evaluation: its overall metrics
    min_labels: int
    max_delay: int
    sliced: tuple[str, ...]

    def check(self) -> None:
        """Bounds the task has no metric for, or relative ones with no blessed figure to compare with, are errors."""
        measured = metrics_of(self.task)
        for metric, bound in sorted(self.thresholds.items()):
            if metric not in measured:
                raise MonitorError(f"monitor.quality.{metric}: not measured for this model ({self.task.kind}"
                                   f"{', ' + str(len(self.task.classes)) + ' classes' if self.task.classes else ''});"
                                   f" expected one of {', '.join(measured)}")
            relative = bound.max_worse is not None or bound.max_worse_relative is not None
            if relative and metric not in self.blessed:
                raise MonitorError(f"monitor.quality.{metric}: max_worse compares with the production model's blessed "
                                   f"evaluation, and the registry records no {metric} for it")

    def window(self, start: int, end: int, scored: Scored, last: dict[str, tuple[int, int]]
               ) -> tuple[tuple[Quality, ...], LabelCounts, set[str]]:
        """The window's quality measurements, its counts, and the keys it joined."""
        rows, values, used = [], [], set()
        no_key = duplicated = unlabelled = late = 0
        for i, key in enumerate(scored.keys):
            label = self.labels.by_key.get(key)
            if not key:
                no_key += 1
            elif last[key] != (start, i):
                duplicated += 1
            elif label is None:
                unlabelled += 1
            elif label.known_at is not None and label.known_at > end + self.max_delay:
                late += 1
            else:
                rows.append(i)
                values.append(label.value)
                used.add(key)
        counts = LabelCounts(len(scored.keys), len(rows), unlabelled, late, no_key, duplicated, scored.unscored,
                             len(rows) < self.min_labels)
        if not rows:
            return tuple(self._quality(m, None, 0) for m in metrics_of(self.task)), counts, used
        truth, scores = self._arrays(values, [scored.scores[i] for i in rows])
        overall = self._accumulator(1)
        overall.add(truth, scores)
        result = overall.result(0, curves=True)
        found = [self._quality(m, result.get(m), len(rows)) for m in metrics_of(self.task)]
        columns = {name: _column([scored.slices[name][i] for i in rows], self.schema, name) for name in self.sliced}
        for feature in self._slicing(columns):
            group = _groups(feature, columns[feature.name])
            by_slice = self._accumulator(len(feature.labels))
            by_slice.add(truth, scores, group)
            for g, name in enumerate(feature.labels):
                n = int(by_slice.count[g])
                if n:
                    result = by_slice.result(g, curves=True)
                    found += [self._quality(m, result.get(m), n, feature.name, name) for m in metrics_of(self.task)]
        return tuple(found), counts, used

    def read(self, used: set[str], logged: set[str]) -> LabelsRead:
        """What the labels source held, and how much of it no window used."""
        unseen = sorted(set(self.labels.by_key) - logged)
        labels = self.labels
        return LabelsRead(labels.source, len(labels.files), labels.rows, len(used), labels.duplicated,
                          labels.incomplete, labels.unreadable, len(unseen), tuple(unseen[:SHOWN_KEYS]))

    def _arrays(self, values: list[str], scores: list) -> tuple[np.ndarray, np.ndarray]:
        if self.task.kind == "regression":
            return np.array(values, np.float64), np.array(scores, np.float64)
        index = {c: i for i, c in enumerate(self.task.classes)}
        return np.array([index[v] for v in values], np.int64), np.array(scores, np.float64)

    def _accumulator(self, groups: int) -> Accumulator:
        if self.task.kind == "classification":
            return Classification.empty(self.task.classes, groups)
        return Regression.empty(groups)

    def _slicing(self, columns: dict[str, np.ndarray]) -> tuple[FeatureSlices, ...]:
        """Each sliced feature's slices over the window's labelled rows, as evaluate settles its test split's."""
        present = {name: _present(column) for name, column in columns.items()}
        names = [name for name, column in present.items() if len(column)]
        profile = Profile.empty(self.schema, names)
        profile.add_columns(present)
        return profile.slices(names, NUMERIC_BINS)

    def _quality(self, metric: str, value, labels: int, feature: str = "", slice: str = "") -> Quality:
        base = self.blessed.get(metric)
        verdict, reason = judge(metric, value, labels, base, self.thresholds.get(metric), self.min_labels)
        return Quality(metric, None if value is None else float(value), labels, base, verdict, reason, feature, slice)


def judge(metric: str, value: float | None, labels: int, blessed: float | None, bound: Threshold | None,
          min_labels: int) -> tuple[Verdict, str]:
    """(verdict, the bound crossed or why there is no verdict, in words)."""
    if bound is None:
        return "unchecked", ""
    if labels < min_labels:
        return "inconclusive", f"{labels} labels, fewer than monitor.min_labels ({min_labels})"
    if value is None:
        return "inconclusive", f"{metric} is undefined on these labels (one class only)"
    if bound.at_least is not None and value < bound.at_least:
        return "crossed", f"{metric} {value:.4g} < {bound.at_least:g} (at_least)"
    if bound.at_most is not None and value > bound.at_most:
        return "crossed", f"{metric} {value:.4g} > {bound.at_most:g} (at_most)"
    if blessed is not None:
        worse = value - blessed if metric in LOWER_IS_BETTER else blessed - value
        for kind, allowed in (("max_worse", bound.max_worse),
                              ("max_worse_relative", None if bound.max_worse_relative is None
                               else bound.max_worse_relative * abs(blessed))):
            if allowed is not None and worse > allowed:
                return "crossed", f"{metric} {value:.4g}, {worse:.4g} worse than the blessed {blessed:.4g} " \
                                  f"({kind} {getattr(bound, kind):g})"
    return "passed", f"{metric} {value:.4g} within its bounds"


def last_predictions(scored: dict[int, Scored]) -> dict[str, tuple[int, int]]:
    """Each key's last prediction, (window start, row), over the windows read in order."""
    last = {}
    for start in sorted(scored):
        for i, key in enumerate(scored[start].keys):
            if key:
                last[key] = (start, i)
    return last


def _column(values: list, schema: Schema, name: str) -> np.ndarray:
    """A sliced feature's values: numbers as floats (NaN where the request lacked it), strings as text."""
    if schema.feature(name).is_numeric:
        return np.array([np.nan if v is None else v for v in values], np.float64)
    return np.array(["" if v is None else v for v in values], dtype=object)


def _present(column: np.ndarray) -> np.ndarray:
    return column[~np.isnan(column)] if column.dtype == np.float64 else column


def _groups(feature: FeatureSlices, column: np.ndarray) -> np.ndarray:
    """Each row's slice, -1 for a number the request lacked."""
    group = feature.assign(column)
    return np.where(np.isnan(column), -1, group) if column.dtype == np.float64 else group
