"""The What-If Tool's analyses, on numpy arrays and a predict function.

- Partial dependence: the mean prediction as one feature sweeps a grid
  (quantiles for numbers, vocabulary values for strings) with every other
  feature left as it is, and per-example lines (ICE) for a sample.
- Nearest counterfactual: the closest example with another predicted class,
  by L1 distance over numbers standardised with the test split's spread plus
  one per differing string, as the What-If Tool measured it.
- Thresholds (binary labels): precision, recall and expected cost against the
  decision threshold, the cheapest threshold for a cost ratio, and per-slice
  thresholds for demographic parity (equal positive rates) and equal
  opportunity (equal true positive rates).
- Images: the most confidently wrong examples, and occlusion saliency (how
  much the predicted class's probability drops when a patch is greyed out).

Results are the typed records of `components.whatif.document`, with values
for people already as text (a missing string shows as "(missing)").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from components.common.page import shown
from components.whatif.document import (
    Counterfactual,
    FeatureValues,
    GroupThresholds,
    PartialDependence,
    ThresholdPoint,
    Thresholds,
    nested,
)

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


def grid(values: np.ndarray, numeric: bool, points: int) -> list:
    if numeric:
        quantiles = np.quantile(values.astype(float), np.linspace(0, 1, points))
        if values.dtype.kind in "iu":
            return sorted({int(round(v)) for v in quantiles})
        return sorted({float(v) for v in quantiles})
    kinds, counts = np.unique(values.astype(str), return_counts=True)
    return [str(k) for k in kinds[np.argsort(-counts, kind="stable")][:points]]


def partial_dependence(predict: Predict, features: dict[str, np.ndarray], name: str, values: list, numeric: bool,
                       ice_examples: int) -> PartialDependence:
    """The mean prediction at each grid value, and the first `ice_examples` examples' own lines."""
    n = len(features[name])
    sweeps = []
    for value in values:
        changed = dict(features)
        changed[name] = np.full(n, value, dtype=features[name].dtype)
        sweeps.append(predict(changed))
    stacked = np.stack(sweeps, axis=1)  # examples x points x outputs
    return PartialDependence(name, numeric, tuple(values), nested(stacked.mean(axis=0).tolist()),
                             nested(stacked[:ice_examples].tolist()))


def nearest_counterfactual(features: dict[str, np.ndarray], numeric: list[str], predicted: np.ndarray,
                           index: int, classes: tuple[str, ...]) -> Counterfactual | None:
    """The closest example predicted as another class, its distance, and both examples' values."""
    others = np.flatnonzero(predicted != predicted[index])
    if not len(others):
        return None
    distance = np.zeros(len(others))
    for name, values in features.items():
        if name in numeric:
            column = values.astype(float)
            spread = column.std() or 1.0
            distance += np.abs(column[others] - column[index]) / spread
        else:
            distance += [_differs(v, values[index]) for v in values[others]]
    best = int(others[np.argmin(distance)])
    values = tuple(FeatureValues(name, shown_value(column[index]), shown_value(column[best]),
                                 _differs(column[best], column[index])) for name, column in features.items())
    return Counterfactual(index, classes[predicted[index]], best, classes[predicted[best]], float(distance.min()),
                          values)


def _differs(a, b) -> bool:
    """Whether two values of a feature differ; a list's value is the whole list."""
    return not np.array_equal(a, b) if isinstance(a, np.ndarray) else bool(a != b)


def shown_value(value) -> str:
    """A feature value for people: numbers to 6 significant digits (no float32 noise), strings as `shown`, a
    list as its values in brackets."""
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(shown_value(v) for v in value) + "]"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return shown(value.item() if isinstance(value, np.generic) else value)


def thresholds(labels: np.ndarray, scores: np.ndarray, cost_ratio: float, groups: np.ndarray | None,
               fairness_feature: str = "", points: int = 101) -> Thresholds:
    """Precision, recall and cost against the threshold; the cheapest one; fair per-group thresholds."""
    grid_ = np.linspace(0, 1, points)
    positive = labels.astype(bool)
    rows = []
    for t in grid_:
        decided = scores >= t
        tp, fp = np.sum(decided & positive), np.sum(decided & ~positive)
        fn = np.sum(~decided & positive)
        rows.append(ThresholdPoint(float(t), float(tp / max(tp + fp, 1)), float(tp / max(tp + fn, 1)),
                                   float(cost_ratio * fp + fn)))
    best = min(rows, key=lambda r: (r.cost, abs(r.threshold - 0.5)))
    fair = _fair_thresholds(positive, scores, groups, grid_, best.threshold) if groups is not None else ()
    return Thresholds(tuple(rows), cost_ratio, best, fair, fairness_feature if groups is not None else "")


def _fair_thresholds(positive, scores, groups, grid_, overall: float) -> tuple[GroupThresholds, ...]:
    """Per group, the threshold whose positive rate (demographic parity) or true positive rate (equal
    opportunity) comes closest to what the overall best threshold gives the whole test split."""
    target_rate = float(np.mean(scores >= overall))
    target_tpr = float(np.mean(scores[positive] >= overall)) if positive.any() else 0.0
    out = []
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        rates = [np.mean(scores[mask] >= t) for t in grid_]
        in_group = mask & positive
        tprs = [np.mean(scores[in_group] >= t) if in_group.any() else 0.0 for t in grid_]
        out.append(GroupThresholds(shown(group), int(mask.sum()),
                                   float(grid_[int(np.argmin([abs(r - target_rate) for r in rates]))]),
                                   float(grid_[int(np.argmin([abs(r - target_tpr) for r in tprs]))])))
    return tuple(out)


def most_confused(labels: np.ndarray, probabilities: np.ndarray, count: int) -> list[int]:
    """Indices of wrong predictions, most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:count].tolist()


def occlusion(predict_images: Callable[[np.ndarray], np.ndarray], image: np.ndarray, patch: int) -> np.ndarray:
    """[h, w] drop of the predicted class's probability when each patch is set to the image's mean."""
    base = predict_images(image[None])[0]
    target = int(base.argmax())
    height, width = image.shape[:2]
    variants, corners = [], []
    for top in range(0, height, patch):
        for left in range(0, width, patch):
            masked = image.copy()
            masked[top:top + patch, left:left + patch] = image.mean()
            variants.append(masked)
            corners.append((top, left))
    drops = base[target] - predict_images(np.stack(variants))[:, target]
    saliency = np.zeros((height, width))
    for (top, left), drop in zip(corners, drops, strict=True):
        saliency[top:top + patch, left:left + patch] = drop
    return saliency
