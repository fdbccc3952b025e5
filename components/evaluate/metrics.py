"""Evaluation metrics of examples held in memory, and the flat numbers gates and logs read.

Classification: loss (cross-entropy), accuracy, balanced accuracy, per-class
precision / recall / F1 / support, the confusion matrix, ROC and PR curves
with their areas (binary: the positive class, i.e. the second of the sorted
classes; several classes: one-vs-rest per class, plus micro and macro
averages) and calibration (reliability bins of the top-class confidence and
the expected calibration error). Regression: MSE as the loss, MAE, RMSE, R2.
They come from the streaming accumulators of `components.evaluate.accumulators`
given all the examples as one batch, so in-memory figures (whatif's) and the
evaluate step's streamed ones are computed alike.
"""

from __future__ import annotations

import numpy as np

from components.common.evaluation_records import Overall
from components.evaluate.accumulators import Classification, Regression

# Metrics where lower is better; every other metric is better higher.
LOWER_IS_BETTER = {"loss", "mae", "rmse", "mse", "ece"}


def classification(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], curves: bool = True) -> dict:
    """Every classification metric for one set of examples; `curves=False` leaves out curves and calibration."""
    accumulator = Classification.empty(tuple(classes))
    accumulator.add(labels, probabilities)
    return accumulator.result(curves=curves)


def regression(labels: np.ndarray, predictions: np.ndarray) -> dict:
    accumulator = Regression.empty()
    accumulator.add(labels, predictions)
    return accumulator.result()


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Reliability of the top-class confidence in equal-width bins, and the expected calibration error."""
    accumulator = Classification.empty(tuple(map(str, range(probabilities.shape[1]))))
    accumulator.add(labels, probabilities)
    return accumulator.calibration()


def scalars(result: dict) -> dict[str, float]:
    """The single numbers of an accumulator's result, flat (`Overall.scalars`)."""
    return Overall.from_dict(result, "metrics").scalars()


def headline(values: dict[str, float]) -> str:
    """The few numbers people look at first, as one line."""
    keys = ("loss", "accuracy", "balanced_accuracy", "auc", "mae", "rmse", "r2")
    return ", ".join(f"{k} {values[k]:.4f}" for k in keys if values.get(k) is not None)
