"""Evaluation metrics from labels and model outputs, with scikit-learn's implementations.

Classification: loss (cross-entropy), accuracy, balanced accuracy, per-class
precision / recall / F1 / support, the confusion matrix, ROC and PR curves
with their areas (binary: the positive class, i.e. the second of the sorted
classes; several classes: one-vs-rest per class, plus micro and macro
averages) and calibration (reliability bins of the top-class confidence and
the expected calibration error). Regression: MSE as the loss, MAE, RMSE, R2.
Curves are thinned to at most `CURVE_POINTS` points for JSON, HTML and KFP.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

CURVE_POINTS = 101
CALIBRATION_BINS = 10
# Metrics where lower is better; every other metric is better higher.
LOWER_IS_BETTER = {"loss", "mae", "rmse", "mse", "ece"}


def classification(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], curves: bool = True) -> dict:
    """Every classification metric for one set of examples; `curves=False` leaves out curves and calibration."""
    n, k = len(labels), len(classes)
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(k), zero_division=0)
    result = {
        "count": int(n),
        "loss": float(skm.log_loss(labels, probabilities, labels=range(k))),
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": float(np.mean(recall[support > 0])),
        "macro_f1": float(np.mean(f1)),
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=range(k)).tolist(),
    }
    positives = _one_vs_rest(labels, probabilities, classes)
    main = "micro" if k > 2 else classes[1]
    result["auc"] = _area(*positives[main], skm.roc_auc_score)
    result["pr_auc"] = _area(*positives[main], skm.average_precision_score)
    if k > 2:
        result["macro_auc"] = _mean(_area(*positives[c], skm.roc_auc_score) for c in classes)
    if curves:
        result["roc"] = {name: _roc(truth, scores) for name, (truth, scores) in positives.items()}
        result["pr"] = {name: _pr(truth, scores) for name, (truth, scores) in positives.items()}
        result["calibration"] = calibration(labels, probabilities)
        result["ece"] = result["calibration"]["ece"]
    return result


def regression(labels: np.ndarray, predictions: np.ndarray) -> dict:
    mse = float(skm.mean_squared_error(labels, predictions))
    return {"count": int(len(labels)), "loss": mse, "mae": float(skm.mean_absolute_error(labels, predictions)),
            "rmse": math.sqrt(mse), "r2": float(skm.r2_score(labels, predictions)) if len(labels) > 1 else None}


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Reliability of the top-class confidence in equal-width bins, and the expected calibration error."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1).round(10)  # 0.6, not 0.6000000000000001
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins = []
    ece = 0.0
    for b in range(CALIBRATION_BINS):
        mask = which == b
        if mask.any():
            bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
                         "confidence": float(confidence[mask].mean()), "accuracy": float(correct[mask].mean())})
            ece += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return {"bins": bins, "ece": float(ece)}


def scalars(result: dict) -> dict[str, float]:
    """The single numbers of a result, flat, for gates, KFP `Metrics` and TensorBoard scalars."""
    out = {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
    for name, values in result.get("per_class", {}).items():
        for key in ("precision", "recall", "f1"):
            out[f"{key}/{name}"] = values[key]
    return out


def headline(values: dict[str, float]) -> str:
    """The few numbers people look at first, as one line."""
    keys = ("loss", "accuracy", "balanced_accuracy", "auc", "mae", "rmse", "r2")
    return ", ".join(f"{k} {values[k]:.4f}" for k in keys if values.get(k) is not None)


def _one_vs_rest(labels, probabilities, classes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(is this class, score of this class) per curve: the positive class when binary, else each class and micro."""
    if len(classes) == 2:
        return {classes[1]: (labels == 1, probabilities[:, 1])}
    onehot = np.eye(len(classes), dtype=bool)[labels]
    curves = {c: (onehot[:, i], probabilities[:, i]) for i, c in enumerate(classes)}
    curves["micro"] = (onehot.ravel(), probabilities.ravel())
    return curves


def _area(truth: np.ndarray, scores: np.ndarray, area) -> float | None:
    """An area under a curve, or None when the examples hold only one of the two outcomes."""
    return float(area(truth, scores)) if 0 < truth.sum() < len(truth) else None


def _roc(truth, scores) -> dict:
    if not 0 < truth.sum() < len(truth):
        return {"auc": None, "fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thresholds = skm.roc_curve(truth, scores)
    keep = _thin(len(fpr))
    return {"auc": float(skm.auc(fpr, tpr)), "fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
            "thresholds": np.minimum(thresholds[keep], 1.0).tolist()}


def _pr(truth, scores) -> dict:
    if not 0 < truth.sum() < len(truth):
        return {"auc": None, "precision": [], "recall": [], "thresholds": []}
    precision, recall, thresholds = skm.precision_recall_curve(truth, scores)
    keep = _thin(len(thresholds))
    return {"auc": float(skm.average_precision_score(truth, scores)), "precision": precision[keep].tolist(),
            "recall": recall[keep].tolist(), "thresholds": thresholds[keep].tolist()}


def _thin(length: int) -> np.ndarray:
    """Indices of at most CURVE_POINTS points spread along a curve, both ends kept."""
    return np.unique(np.linspace(0, length - 1, min(length, CURVE_POINTS)).round().astype(int))


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None
