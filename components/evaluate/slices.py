"""Metrics per slice of the test split: a model that is good on average can fail one group.

By default every string feature is sliced by its values and every number by
`numeric_bins` quantile bins of the test split; `evaluate.slices` names the
features instead. Each slice reports its example count and the scalar
metrics of `components.evaluate.metrics` (no curves). A missing string value
(read as "") is its own slice, labelled "(missing)": a model often fails
exactly there, and a blank label would hide it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from components.common.config import EvaluateConfig
from components.common.page import shown
from components.common.schema import Schema
from components.evaluate.gate import EvaluateError

MAX_VALUES = 20  # string slices per feature, most frequent first


def features_to_slice(schema: Schema, cfg: EvaluateConfig) -> list[str]:
    sliceable = {f.name: f for f in schema.inputs if f.type != "image"}
    if not cfg.slices:
        return list(sliceable)
    for name in cfg.slices:
        if name not in sliceable:
            raise EvaluateError(f"evaluate.slices: {name!r} is not a feature that can be sliced; expected one of "
                                f"{sorted(sliceable)}")
    return list(cfg.slices)


def why_none(schema: Schema) -> str:
    """Why a model has no slices: `features_to_slice` finds none only when every input is an image."""
    images = ", ".join(f.name for f in schema.inputs if f.type == "image")
    return (f"Not sliced: the model reads only images ({images}), and slices group examples by the values of "
            "tabular features.")


def masks(name: str, values: np.ndarray, numeric: bool, bins: int) -> Iterator[tuple[str, np.ndarray]]:
    """(slice label, boolean mask) for one feature's test values."""
    values = values.reshape(-1)
    if not numeric:
        text = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values])
        kinds, counts = np.unique(text, return_counts=True)
        for kind in kinds[np.argsort(-counts, kind="stable")][:MAX_VALUES]:
            yield shown(kind), text == kind
        return
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if len(edges) == 1:
        yield f"{edges[0]:.4g}", np.ones(len(values), bool)
        return
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    for b in range(len(edges) - 1):
        closing = "]" if b == len(edges) - 2 else ")"
        if (which == b).any():
            yield f"[{edges[b]:.4g}, {edges[b + 1]:.4g}{closing}", which == b


def compute(schema: Schema, cfg: EvaluateConfig, features: dict[str, np.ndarray],
            score: Callable[[np.ndarray], dict]) -> list[dict]:
    """One row per slice: feature, slice, count and `score(mask)`'s metrics."""
    rows = []
    for name in features_to_slice(schema, cfg):
        numeric = schema.feature(name).is_numeric
        for label, mask in masks(name, features[name], numeric, cfg.numeric_bins):
            rows.append({"feature": name, "slice": label, "count": int(mask.sum()), "metrics": score(mask)})
    return rows
