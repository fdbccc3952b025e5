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
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


def grid(values: np.ndarray, numeric: bool, points: int) -> list:
    if numeric:
        quantiles = np.quantile(values.astype(float), np.linspace(0, 1, points))
        if values.dtype.kind in "iu":
            return sorted({int(round(v)) for v in quantiles})
        return sorted({float(v) for v in quantiles})
    kinds, counts = np.unique(values.astype(str), return_counts=True)
    return [str(k) for k in kinds[np.argsort(-counts, kind="stable")][:points]]


def partial_dependence(predict: Predict, features: dict[str, np.ndarray], name: str, values: list,
                       ice_examples: int) -> dict:
    """{"grid", "mean": [points x outputs], "ice": [examples x points x outputs]}."""
    n = len(features[name])
    sweeps = []
    for value in values:
        changed = dict(features)
        changed[name] = np.full(n, value, dtype=features[name].dtype)
        sweeps.append(predict(changed))
    stacked = np.stack(sweeps, axis=1)  # examples x points x outputs
    return {"grid": list(values), "mean": stacked.mean(axis=0).tolist(),
            "ice": stacked[:ice_examples].tolist()}


def nearest_counterfactual(features: dict[str, np.ndarray], numeric: list[str], predicted: np.ndarray,
                           index: int) -> dict | None:
    """The closest example predicted as another class, its distance and the features that differ."""
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
            distance += values[others] != values[index]
    best = int(others[np.argmin(distance)])
    differs = [name for name, values in features.items() if values[best] != values[index]]
    return {"example": index, "counterfactual": best, "distance": float(distance.min()), "differs": differs}


def thresholds(labels: np.ndarray, scores: np.ndarray, cost_ratio: float, groups: np.ndarray | None,
               points: int = 101) -> dict:
    """Precision, recall and cost against the threshold; the cheapest one; fair per-group thresholds."""
    grid_ = np.linspace(0, 1, points)
    positive = labels.astype(bool)
    rows = []
    for t in grid_:
        decided = scores >= t
        tp, fp = np.sum(decided & positive), np.sum(decided & ~positive)
        fn = np.sum(~decided & positive)
        rows.append({"threshold": float(t), "precision": float(tp / max(tp + fp, 1)),
                     "recall": float(tp / max(tp + fn, 1)), "cost": float(cost_ratio * fp + fn)})
    best = min(rows, key=lambda r: (r["cost"], abs(r["threshold"] - 0.5)))
    result = {"curve": rows, "cost_ratio": cost_ratio, "best": best}
    if groups is not None:
        result["groups"] = _fair_thresholds(positive, scores, groups, grid_, best["threshold"])
    return result


def _fair_thresholds(positive, scores, groups, grid_, overall: float) -> dict:
    """Per group, the threshold whose positive rate (demographic parity) or true positive rate (equal
    opportunity) comes closest to what the overall best threshold gives the whole test split."""
    target_rate = float(np.mean(scores >= overall))
    target_tpr = float(np.mean(scores[positive] >= overall)) if positive.any() else 0.0
    out = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        rates = [np.mean(scores[mask] >= t) for t in grid_]
        in_group = mask & positive
        tprs = [np.mean(scores[in_group] >= t) if in_group.any() else 0.0 for t in grid_]
        out[group.decode("utf-8", "replace") if isinstance(group, bytes) else str(group)] = {
            "count": int(mask.sum()),
            "demographic_parity": float(grid_[int(np.argmin([abs(r - target_rate) for r in rates]))]),
            "equal_opportunity": float(grid_[int(np.argmin([abs(r - target_tpr) for r in tprs]))]),
        }
    return out


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
    for (top, left), drop in zip(corners, drops):
        saliency[top:top + patch, left:left + patch] = drop
    return saliency
