"""How far one distribution is from another, as TFDV and Vertex AI Model Monitoring measure drift and skew.

Categorical features: the L-infinity distance, the largest difference in the
fraction of values any one category takes. Numeric features: the Jensen-Shannon
divergence (base 2, so within [0, 1]) between the histograms, both re-binned
onto the baseline's bucket boundaries with their values spread evenly within
each bucket, TFDV's assumption (`common_bins` says why the outermost bins are
open-ended).

Both work on statistics alone (counts by value, `tensorflow_metadata`
histograms), so that validate compares data sets, and the serving monitor
compares request statistics with training's, without reading rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from components.common.metadata import Histogram, boundaries, rebin


@dataclass(frozen=True)
class Distance:
    value: float
    # The category with the largest difference (L-infinity); "" for a divergence.
    at: str = ""


def l_infinity(baseline: Mapping[str, float], new: Mapping[str, float]) -> Distance:
    """max over categories of |baseline fraction - new fraction|, each normalised by its own total."""
    base_total, new_total = sum(baseline.values()), sum(new.values())
    if not base_total or not new_total:
        return Distance(0.0)
    gaps = {v: abs(baseline.get(v, 0.0) / base_total - new.get(v, 0.0) / new_total) for v in {*baseline, *new}}
    at = max(sorted(gaps), key=gaps.__getitem__)
    return Distance(gaps[at], at if gaps[at] else "")


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(P || Q) = (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2, in bits; inputs are counts over the
    same bins, normalised here."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if not p.sum() or not q.sum():
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(min(1.0, (_kl(p, m) + _kl(q, m)) / 2))


def _kl(p: np.ndarray, m: np.ndarray) -> float:
    held = p > 0
    return float(np.sum(p[held] * np.log2(p[held] / m[held])))


def histogram_jensen_shannon(baseline: Histogram, new: Histogram) -> float:
    """JSD between two histograms over the baseline's buckets (see `common_bins`)."""
    _, p, q = common_bins(baseline, new)
    return jensen_shannon(p, q)


def common_bins(baseline: Histogram, new: Histogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inner boundaries of the baseline's buckets, and both histograms' counts in the bins they make.

    The outer buckets of a quantile histogram reach to the extremes, and spreading their values evenly up to
    a far maximum would count values beyond the baseline's range that are not there; so values below the
    baseline's second boundary share one open-ended bin, as do those above its second-to-last (the range
    check is what looks beyond the range).
    """
    edges = boundaries(baseline)
    edges = edges[1:-1] if len(edges) > 2 else edges
    return edges, rebin(baseline, edges), rebin(new, edges)
