"""Metric accumulators that stream over the test split: fixed-size counts and sums, added a batch at a time, merged.

Evaluation never holds the test split. Each accumulator keeps arrays whose
size is set by the task (classes, score buckets, calibration bins) and by
the number of groups it keeps apart (one for the whole split, one per slice
of a feature), never by the number of examples. `add` takes a batch with each
row's group, `merge` adds another accumulator's state (the Beam engine's
CombineFn merges its workers' partial ones), `result` gives one group's
metrics in the shape `metrics.json` has always had.

Classification keeps the confusion matrix (counts, accuracy, precision,
recall and F1 are exact), the summed cross-entropy, reliability bins of the
top-class confidence, and per curve class the examples by score bucket:
`BUCKETS` equal-width buckets of [0, 1], as TFMA computes AUC with 10,000
thresholds. Scores in one bucket count as tied, which keeps ROC AUC and
average precision within 1e-3 of scikit-learn's exact figures unless the
scores crowd into a few buckets. Regression keeps the labels' count, mean and
squared deviation (merged with Chan's parallel update, accurate over millions
of rows) and the summed squared and absolute errors: MSE, MAE, RMSE and R2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BUCKETS = 10_000
CURVE_POINTS = 101  # most points of a curve written to JSON, HTML and KFP
CALIBRATION_BINS = 10
CALIBRATION_EDGES = np.linspace(0, 1, CALIBRATION_BINS + 1).round(10)  # 0.6, not 0.6000000000000001


@dataclass
class Classification:
    classes: tuple[str, ...]
    count: np.ndarray  # (groups,)
    loss: np.ndarray  # (groups,): cross-entropy, summed
    confusion: np.ndarray  # (groups, classes, classes): true x predicted
    positives: np.ndarray  # (groups, curves, BUCKETS): examples of the curve's class by its score bucket
    examples: np.ndarray  # (groups, curves, BUCKETS): every example by that score bucket
    reliability: np.ndarray  # (groups, 3, CALIBRATION_BINS): count, confidence summed, correct summed

    @classmethod
    def empty(cls, classes: tuple[str, ...], groups: int = 1) -> Classification:
        k, curves = len(classes), len(_curve_classes(len(classes)))
        return cls(tuple(classes), np.zeros(groups, np.int64), np.zeros(groups), np.zeros((groups, k, k), np.int64),
                   np.zeros((groups, curves, BUCKETS), np.int64), np.zeros((groups, curves, BUCKETS), np.int64),
                   np.zeros((groups, 3, CALIBRATION_BINS)))

    def add(self, labels: np.ndarray, probabilities: np.ndarray, group: np.ndarray | None = None) -> None:
        """A batch: label indices, class probabilities (one row each) and each row's group (-1: none; None: 0)."""
        labels, probabilities, group = _grouped(labels, probabilities, group)
        k, rows = len(self.classes), np.arange(len(labels))
        predicted = probabilities.argmax(axis=1)
        eps = np.finfo(probabilities.dtype).eps  # clipped as scikit-learn's log_loss does
        np.add.at(self.count, group, 1)
        np.add.at(self.loss, group, -np.log(np.clip(probabilities[rows, labels], eps, 1 - eps).astype(np.float64)))
        np.add.at(self.confusion, (group, labels, predicted), 1)
        curves = _curve_classes(k)
        bucket = np.clip((probabilities[:, curves] * BUCKETS).astype(np.int64), 0, BUCKETS - 1)
        np.add.at(self.examples, (group[:, None], np.arange(len(curves)), bucket), 1)
        curve_of = np.full(k, -1)
        curve_of[curves] = np.arange(len(curves))
        curve, own = curve_of[labels], curve_of[labels] >= 0
        np.add.at(self.positives, (group[own], curve[own], bucket[own, curve[own]]), 1)
        confidence = probabilities.max(axis=1).astype(np.float64)
        which = np.clip(np.digitize(confidence, CALIBRATION_EDGES[1:-1]), 0, CALIBRATION_BINS - 1)
        for i, value in enumerate((1.0, confidence, predicted == labels)):
            np.add.at(self.reliability, (group, i, which), value)

    def merge(self, other: Classification) -> Classification:
        for name in ("count", "loss", "confusion", "positives", "examples", "reliability"):
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    def result(self, group: int = 0, curves: bool = True) -> dict:
        """Every classification metric of one group; `curves=False` leaves out curves and calibration."""
        n, matrix = int(self.count[group]), self.confusion[group]
        hits, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
        precision, recall, f1 = _ratio(hits, predicted), _ratio(hits, support), _ratio(2 * hits, support + predicted)
        result = {
            "count": n,
            "loss": float(self.loss[group] / n),
            "accuracy": float(hits.sum() / n),
            "balanced_accuracy": float(np.mean(recall[support > 0])),
            "macro_f1": float(np.mean(f1)),
            "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, c in enumerate(self.classes)},
            "confusion_matrix": matrix.tolist(),
        }
        histograms = self.histograms(group, micro=True)
        main = "micro" if len(self.classes) > 2 else self.classes[1]
        result["auc"] = _roc(*histograms[main])["auc"]
        result["pr_auc"] = _pr(*histograms[main])["auc"]
        if len(self.classes) > 2:
            result["macro_auc"] = _mean(_roc(*histograms[c])["auc"] for c in self.classes)
        if curves:
            result["roc"] = {name: _roc(*h) for name, h in histograms.items()}
            result["pr"] = {name: _pr(*h) for name, h in histograms.items()}
            result["calibration"] = self.calibration(group)
            result["ece"] = result["calibration"]["ece"]
        return result

    def histograms(self, group: int = 0, micro: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(positives, examples) by score bucket per curve: the positive class when binary, else each class
        and, with `micro`, all classes pooled (the micro average)."""
        names = [self.classes[c] for c in _curve_classes(len(self.classes))]
        out = {name: (self.positives[group, i], self.examples[group, i]) for i, name in enumerate(names)}
        if micro and len(names) > 1:
            out["micro"] = (self.positives[group].sum(axis=0), self.examples[group].sum(axis=0))
        return out

    def calibration(self, group: int = 0) -> dict:
        """Reliability of the top-class confidence in equal-width bins, and the expected calibration error."""
        count, confidence, correct = self.reliability[group]
        used = np.flatnonzero(count)
        bins = [{"low": float(CALIBRATION_EDGES[b]), "high": float(CALIBRATION_EDGES[b + 1]), "count": int(count[b]),
                 "confidence": float(confidence[b] / count[b]), "accuracy": float(correct[b] / count[b])}
                for b in used]
        ece = np.sum(np.abs(confidence[used] - correct[used])) / max(count.sum(), 1)
        return {"bins": bins, "ece": float(ece)}


@dataclass
class Regression:
    count: np.ndarray  # (groups,)
    mean: np.ndarray  # of the labels
    m2: np.ndarray  # the labels' squared deviations from their mean, summed
    squared: np.ndarray  # squared errors, summed
    absolute: np.ndarray  # absolute errors, summed

    @classmethod
    def empty(cls, groups: int = 1) -> Regression:
        return cls(np.zeros(groups, np.int64), *(np.zeros(groups) for _ in range(4)))

    def add(self, labels: np.ndarray, predictions: np.ndarray, group: np.ndarray | None = None) -> None:
        labels, predictions, group = _grouped(labels.astype(np.float64), predictions.astype(np.float64), group)
        size = len(self.count)

        def summed(values: np.ndarray) -> np.ndarray:
            return np.bincount(group, values, minlength=size)

        count = np.bincount(group, minlength=size)
        mean = summed(labels) / np.maximum(count, 1)
        errors = labels - predictions
        self.squared += summed(errors ** 2)
        self.absolute += summed(np.abs(errors))
        self._pool(count, mean, summed((labels - mean[group]) ** 2))

    def merge(self, other: Regression) -> Regression:
        self.squared += other.squared
        self.absolute += other.absolute
        self._pool(other.count, other.mean, other.m2)
        return self

    def _pool(self, count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        """Chan et al.'s update of count, mean and squared deviation by another part's."""
        total = self.count + count
        delta = mean - self.mean
        share = count / np.maximum(total, 1)
        self.mean += delta * share
        self.m2 += m2 + delta * delta * self.count * share
        self.count = total

    def result(self, group: int = 0, curves: bool = False) -> dict:
        """MSE as the loss, MAE, RMSE and R2 (undefined for one example); `curves` is for classification's sake."""
        n, sse = int(self.count[group]), float(self.squared[group])
        mse = sse / n
        return {"count": n, "loss": mse, "mae": float(self.absolute[group] / n), "rmse": math.sqrt(mse),
                "r2": _r2(sse, float(self.m2[group])) if n > 1 else None}


Accumulator = Classification | Regression


def _grouped(labels: np.ndarray, outputs: np.ndarray, group: np.ndarray | None):
    if group is None:
        return labels, outputs, np.zeros(len(labels), np.int64)
    keep = group >= 0
    return labels[keep], outputs[keep], group[keep]


def _curve_classes(k: int) -> np.ndarray:
    """The classes with a curve: the positive (second) class of a binary label, else every class."""
    return np.array([1]) if k == 2 else np.arange(k)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    return np.divide(top, bottom, out=np.zeros(len(top)), where=bottom > 0)


def _r2(sse: float, sst: float) -> float:
    """1 - SSE / SST, and for constant labels 1.0 when every prediction is right, else 0.0, as scikit-learn."""
    if sst == 0:
        return 1.0 if sse == 0 else 0.0
    return 1 - sse / sst


def _counts(positives: np.ndarray, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, threshold) at each used bucket's lower edge, highest threshold first:
    an example counts as predicted positive when its bucket is at or above the threshold's."""
    used = np.flatnonzero(examples)[::-1]
    tp = np.cumsum(positives[::-1])[::-1][used]
    fp = np.cumsum((examples - positives)[::-1])[::-1][used]
    return tp, fp, used / BUCKETS


def _defined(positives: np.ndarray, examples: np.ndarray) -> bool:
    """Whether the examples hold both outcomes: otherwise a curve's area is undefined."""
    return 0 < positives.sum() < examples.sum()


def _roc(positives: np.ndarray, examples: np.ndarray) -> dict:
    if not _defined(positives, examples):
        return {"auc": None, "fpr": [], "tpr": [], "thresholds": []}
    tp, fp, thresholds = _counts(positives, examples)
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    thresholds = np.concatenate([[1.0], thresholds])
    keep = _thin(len(fpr))
    return {"auc": float(np.trapezoid(tpr, fpr)), "fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
            "thresholds": thresholds[keep].tolist()}


def _pr(positives: np.ndarray, examples: np.ndarray) -> dict:
    """Precision and recall by rising threshold (as scikit-learn lists them); the area is average precision."""
    if not _defined(positives, examples):
        return {"auc": None, "precision": [], "recall": [], "thresholds": []}
    tp, fp, thresholds = _counts(positives, examples)
    precision, recall = tp / (tp + fp), tp / tp[-1]
    average = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    keep = _thin(len(thresholds))
    return {"auc": average, "precision": precision[::-1][keep].tolist(), "recall": recall[::-1][keep].tolist(),
            "thresholds": thresholds[::-1][keep].tolist()}


def _thin(length: int) -> np.ndarray:
    """Indices of at most CURVE_POINTS points spread along a curve, both ends kept."""
    return np.unique(np.linspace(0, length - 1, min(length, CURVE_POINTS)).round().astype(int))


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None
