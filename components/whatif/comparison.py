"""Two models on the same test rows: which is better, where, by how much, and whether it is beyond noise.

Every metric compared is a mean over rows (accuracy, cross-entropy loss, MAE)
or the root of one (RMSE), so it is computed for both models on each
bootstrap resample of the rows: the 95% interval of the difference is paired
(both models see the same resample), which is much tighter than two separate
intervals when the models err on the same rows. A difference is beyond noise
when its interval does not hold 0; the findings, overall and per slice, are
the report's verdict. Slices are many, so a finding in a small slice is worth
a second look before it decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.common.task import Task
from components.evaluate import metrics as metrics_lib
from components.whatif.analysis import shown_value
from components.whatif.document import (
    Calibration,
    CalibrationBin,
    Difference,
    Disagreement,
    Finding,
    SliceDifferences,
    Value,
    WhatIfError,
    nested,
)

RESAMPLED_VALUES = 1 << 21  # rows x resamples drawn at once: bounds the memory of one bootstrap step
LEVEL = 95  # the interval's coverage, in percent


@dataclass(frozen=True)
class PerRow:
    """One metric as a mean of per-row values, its root taken after averaging when `root`."""

    metric: str
    candidate: np.ndarray
    baseline: np.ndarray
    root: bool = False

    def value(self, rows: np.ndarray) -> tuple[float, float]:
        """(candidate, baseline) on these rows."""
        return (float(_finish(self.candidate[rows].mean(), self.root)),
                float(_finish(self.baseline[rows].mean(), self.root)))


def check_same_task(task: Task, candidate: np.ndarray, baseline: np.ndarray, baseline_name: str) -> None:
    """Two models compared must answer the same question: as many outputs, each a class of this label."""
    width = len(task.classes) if task.classes else 1
    got = baseline.reshape(len(baseline), -1).shape[1]
    if got != width or candidate.reshape(len(candidate), -1).shape[1] != width:
        expected = f"{width} class probabilities ({', '.join(task.classes)})" if task.classes else "1 number"
        raise WhatIfError(f"{baseline_name}: it answers {got} value{'s' * (got != 1)} per example where the "
                          f"candidate and the examples' label answer {expected}: the two models do not have the "
                          "same task or classes, so they cannot be compared")


def per_row(task: Task, labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray) -> tuple[PerRow, ...]:
    """The compared metrics, per row, for both models."""
    if task.kind == "classification":
        def correct(p: np.ndarray) -> np.ndarray:
            return (p.argmax(axis=1) == labels).astype(np.float64)

        def loss(p: np.ndarray) -> np.ndarray:  # clipped as the evaluate step's (and scikit-learn's) log loss
            eps = np.finfo(p.dtype).eps
            return -np.log(np.clip(p[np.arange(len(labels)), labels.astype(int)], eps, 1 - eps).astype(np.float64))

        return (PerRow("accuracy", correct(candidate), correct(baseline)),
                PerRow("loss", loss(candidate), loss(baseline)))
    a, b = (p.reshape(-1).astype(np.float64) - labels.astype(np.float64) for p in (candidate, baseline))
    return PerRow("mae", np.abs(a), np.abs(b)), PerRow("rmse", a ** 2, b ** 2, root=True)


def differences(metrics: tuple[PerRow, ...], rows: np.ndarray, resamples: int, seed: int = 0) -> tuple[Difference, ...]:
    """Each metric on `rows` (indices) for both models, and the paired bootstrap interval of the difference."""
    out = []
    for m in metrics:
        candidate, baseline = m.value(rows)
        low, high = _interval(m, rows, resamples, np.random.default_rng(seed))
        lower_better = m.metric in metrics_lib.LOWER_IS_BETTER
        better = "neither" if low <= 0 <= high else \
            "candidate" if (low > 0) != lower_better else "baseline"
        out.append(Difference(m.metric, candidate, baseline, candidate - baseline, low, high, better))
    return tuple(out)


def _interval(m: PerRow, rows: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    n = len(rows)
    step = max(1, RESAMPLED_VALUES // max(n, 1))
    found = []
    for start in range(0, resamples, step):
        drawn = rows[rng.integers(0, n, (min(step, resamples - start), n))]
        found.append(_finish(m.candidate[drawn].mean(axis=1), m.root) - _finish(m.baseline[drawn].mean(axis=1), m.root))
    tail = (100 - LEVEL) / 2
    low, high = np.percentile(np.concatenate(found), [tail, 100 - tail])
    return float(low), float(high)


def _finish(mean, root: bool):
    return np.sqrt(mean) if root else mean


def findings(overall: tuple[Difference, ...], slices: tuple[SliceDifferences, ...]) -> tuple[Finding, ...]:
    """Every difference beyond noise: overall first, then the slices, largest first within each metric."""
    found = [Finding("overall", d) for d in overall if d.better != "neither"]
    in_slices = [Finding(f"{s.feature} = {s.slice}", d) for s in slices for d in s.differences if d.better != "neither"]
    return tuple(found + sorted(in_slices, key=lambda f: (f.difference.metric, -abs(f.difference.difference))))


def most_confident_disagreements(task: Task, labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray,
                                 features: dict[str, np.ndarray], count: int,
                                 pictures: np.ndarray | None = None) -> tuple[Disagreement, ...]:
    """Rows put in different classes, those where the less sure of the two models is surest first; each with
    its features and, for an image model, its image (`pictures`, one per row)."""
    a, b = candidate.argmax(axis=1), baseline.argmax(axis=1)
    rows = np.flatnonzero(a != b)
    sure = np.minimum(candidate[rows, a[rows]], baseline[rows, b[rows]])
    return tuple(
        Disagreement(int(i), task.classes[int(labels[i])], task.classes[a[i]], float(candidate[i, a[i]]),
                     task.classes[b[i]], float(baseline[i, b[i]]),
                     tuple(Value(name, shown_value(column[i])) for name, column in features.items()),
                     nested(pictures[i].tolist()) if pictures is not None else ())
        for i in rows[np.argsort(-sure, kind="stable")][:count])


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> Calibration:
    found = metrics_lib.calibration(labels, probabilities)
    return Calibration(found["ece"], tuple(CalibrationBin(**b) for b in found["bins"]))
