"""The confusion-matrix metric against hand-counted values."""

import numpy as np
import pytest

from components.train.metrics import ConfusionMatrix


def test_counts_and_balanced_accuracy():
    metric = ConfusionMatrix(3)
    probabilities = np.eye(3, dtype=np.float32)[[0, 1, 1, 1]]  # predicted classes 0, 1, 1, 1
    metric.update_state(np.array([0, 0, 1, 2]), probabilities)
    assert metric.matrix().tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert float(metric.result()) == pytest.approx((1 / 2 + 1 + 0) / 3)
    metric.update_state(np.array([2]), np.eye(3, dtype=np.float32)[[2]])
    assert metric.matrix()[2].tolist() == [0, 1, 1]
    metric.reset_state()
    assert metric.matrix().sum() == 0
    assert float(metric.result()) == 0.0


def test_classes_without_examples_do_not_count():
    metric = ConfusionMatrix(4)
    metric.update_state(np.array([0, 1]), np.eye(4, dtype=np.float32)[[0, 0]])
    assert float(metric.result()) == pytest.approx(0.5)  # classes 2 and 3 have no support
