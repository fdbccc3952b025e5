"""Distributions side by side, as validate's and monitor's reports draw them: the same bins for every side.

A categorical feature (or a text's tokens) is drawn over the most frequent values of all sides; a number
over the reference side's quantile bins (`distance.common_bins`, the bins its Jensen-Shannon divergence is
measured over), labelled `[lo, hi)` with open-ended bins below and above.
"""

from __future__ import annotations

import numpy as np

from components.common.metadata import Histogram
from components.common.page import legend
from components.validate import distance
from components.validate.profile import Profile

SHOWN_CATEGORIES = 15  # bars per categorical plot: the most frequent values of any side


def categories(sides: dict[str, Profile]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The most frequent values of all sides, and each side's fraction of rows holding each."""
    totals: dict[str, float] = {}
    for side in sides.values():
        for value, count in side.values.items():
            totals[value] = totals.get(value, 0) + count
    values = sorted(totals, key=lambda v: -totals[v])[:SHOWN_CATEGORIES]
    return values, {name: np.array([side.values.get(v, 0.0) for v in values]) / max(sum(side.values.values()), 1)
                    for name, side in sides.items()}


def quantile_bins(reference: Histogram, histograms: dict[str, Histogram]
                  ) -> tuple[list[str], dict[str, np.ndarray]]:
    """The reference's quantile bins, labelled, and each side's fraction of rows in each."""
    counts = {name: distance.common_bins(reference, histogram) for name, histogram in histograms.items()}
    edges = next(iter(counts.values()))[0]
    text = [f"{e:,.0f}" if abs(e) >= 1000 else f"{e:.3g}" for e in edges]
    last = len(text) - 2  # the last inner bin holds its upper boundary
    inner = [f"[{lo}, {hi}{']' if i == last else ')'}" for i, (lo, hi) in enumerate(zip(text[:-1], text[1:],
                                                                                         strict=True))]
    labels = [f"< {text[0]}", *(inner or text), f"> {text[-1]}"]
    return labels, {name: new / max(new.sum(), 1e-12) for name, (_, _, new) in counts.items()}


def bars(ax, title: str, labels: list[str], fractions: dict[str, np.ndarray], colours: dict[str, str],
         xlabel: str) -> None:
    """The sides' bars next to each other in every bin (in the order of `colours`), so that each bin compares
    at a glance."""
    x = np.arange(len(labels))
    width = 0.8 / len(fractions)
    for i, name in enumerate(k for k in colours if k in fractions):
        ax.bar(x + (i - (len(fractions) - 1) / 2) * width, fractions[name], width, color=colours[name], label=name)
    ax.set_xticks(x, labels, rotation=90, fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("fraction of rows", fontsize=8)
    legend(ax)
