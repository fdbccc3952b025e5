"""Metrics against values counted by hand on small fixtures."""

import math

import numpy as np
import pytest

from components.common.evaluation_records import MetricsDocument
from components.evaluate import artifacts, metrics

# Binary: true labels and the probability of class "yes"; predicted = [0, 1, 1, 0, 1, 0].
LABELS = np.array([0, 0, 1, 1, 1, 0])
P_YES = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2])
PROBS = np.stack([1 - P_YES, P_YES], axis=1)


def test_binary_by_hand():
    r = metrics.classification(LABELS, PROBS, ["no", "yes"])
    assert r["count"] == 6
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion_matrix"] == [[2, 1], [1, 2]]
    for name in ("no", "yes"):
        assert r["per_class"][name] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    # Of the 9 (positive, negative) pairs, 8 rank the positive higher (0.4 < 0.6 is the exception).
    assert r["auc"] == pytest.approx(8 / 9)
    p_true = [0.9, 0.4, 0.8, 0.4, 0.9, 0.8]
    assert r["loss"] == pytest.approx(-np.mean(np.log(p_true)))
    assert list(r["roc"]) == ["yes"]
    assert r["roc"]["yes"]["auc"] == pytest.approx(8 / 9)
    assert r["roc"]["yes"]["fpr"][0] == 0
    assert r["roc"]["yes"]["tpr"][-1] == 1
    # Average precision: ranked yes, yes, (no), yes -> (1 + 1 + 3/4) / 3.
    assert r["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)


def test_calibration_by_hand():
    # Top-class confidences 0.9, 0.6, 0.8, 0.6, 0.9, 0.8; right, wrong, right, wrong, right, right.
    r = metrics.calibration(LABELS, PROBS)
    by_bin = {(round(b["low"], 2), round(b["high"], 2)): b for b in r["bins"]}
    assert by_bin[(0.6, 0.7)]["count"] == 2
    assert by_bin[(0.6, 0.7)]["accuracy"] == 0.0
    assert by_bin[(0.8, 0.9)]["accuracy"] == 1.0
    expected = (2 * abs(0.6 - 0) + 2 * abs(0.8 - 1) + 2 * abs(0.9 - 1)) / 6
    assert r["ece"] == pytest.approx(expected)


def test_several_classes_one_vs_rest():
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.1, 0.4]])
    r = metrics.classification(labels, probs, ["a", "b", "c"])
    assert r["accuracy"] == 0.75
    assert r["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert set(r["roc"]) == {"a", "b", "c", "micro"}
    # Class c against the rest: scores of c's examples 0.6, 0.4; of the others 0.1, 0.3 -> every pair right.
    assert r["roc"]["c"]["auc"] == 1.0
    assert r["macro_auc"] == pytest.approx(np.mean([r["roc"][c]["auc"] for c in "abc"]))
    categories, matrix = artifacts.confusion_matrix(MetricsDocument.from_dict(
        {"model": "m", "task": "classification", "classes": ["a", "b", "c"], "overall": r}))
    assert categories == ["a", "b", "c"]
    assert matrix == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_a_single_outcome_has_no_auc():
    r = metrics.classification(np.array([1, 1]), np.array([[0.2, 0.8], [0.4, 0.6]]), ["no", "yes"])
    assert r["auc"] is None
    assert r["roc"]["yes"]["fpr"] == []
    assert "auc" not in metrics.scalars(r)


def test_regression_by_hand():
    r = metrics.regression(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    assert r["mae"] == pytest.approx(0.5)
    assert r["loss"] == pytest.approx(1.25 / 3)
    assert r["rmse"] == pytest.approx(math.sqrt(1.25 / 3))
    assert r["r2"] == pytest.approx(1 - 1.25 / 2)


def test_scalars_flatten_per_class_numbers():
    s = metrics.scalars(metrics.classification(LABELS, PROBS, ["no", "yes"]))
    assert s["precision/yes"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert all(isinstance(v, float) for v in s.values())
