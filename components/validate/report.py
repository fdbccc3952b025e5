"""report.html (every finding, and both distributions of every drifted feature) and report.md (for the run summary)."""

from __future__ import annotations

import numpy as np

from components.common.page import escape, figure, page, table
from components.validate import distance
from components.validate.anomalies import Anomalies, Finding
from components.validate.checks import TEXT_DRIFT, Sides
from components.validate.profile import Profile

SHOWN_CATEGORIES = 15  # bins per categorical plot: the most frequent values of either side
_HEADER = ["verdict", "feature", "kind", "statistic", "measured", "threshold", "finding"]


def html(anomalies: Anomalies, sides: Sides | None) -> str:
    parts = ["<h1>Data validation</h1>", f"<p>{_summary(anomalies, escape, '<code>{}</code>')}</p>"]
    if sides is not None:
        flagged = [f for f in anomalies.findings if f.verdict != "pass"]
        drift = [f for f in anomalies.findings if f.kind == "drift"]
        parts += ["<h2>Anomalies</h2>", _table(flagged) if flagged else "<p class='ok'>None.</p>",
                  "<h2>Drift by feature</h2>", _table(sorted(drift, key=lambda f: -f.measured)),
                  *_distributions(drift, sides),
                  "<h2>Every check</h2>", _table(sorted(anomalies.findings, key=lambda f: (f.subject, f.kind)))]
    return page("tfpipe data validation", parts)


def markdown(anomalies: Anomalies) -> str:
    lines = [f"### Data validation: {'passed' if anomalies.validated else 'FAILED'}", "",
             _summary(anomalies, str, "`{}`"), ""]
    flagged = [f for f in anomalies.findings if f.verdict != "pass"]
    if flagged:
        lines += ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
        lines += ["| " + " | ".join(_cells(f, lambda s: s.replace("|", "\\|"))) + " |" for f in flagged]
    return "\n".join(lines) + "\n"


def _summary(anomalies: Anomalies, text, code: str) -> str:
    """One paragraph in HTML or Markdown: `text` escapes, `code` formats a path."""
    examples = code.format(text(anomalies.examples))
    if anomalies.first_run:
        return f"Examples {examples}: no baseline (a first run), so nothing to compare with; validated."
    drift = [f for f in anomalies.findings if f.kind == "drift"]
    worst = max(drift, key=lambda f: f.measured, default=None)
    largest = f" Largest drift: {text(worst.feature)} ({worst.statistic} {worst.measured:.4f}, threshold " \
              f"{worst.threshold:g})." if worst else ""
    return (f"Examples {examples} against the baseline {code.format(text(anomalies.baseline))}: "
            f"{'validated' if anomalies.validated else 'NOT validated'}, {len(anomalies.failures)} failing and "
            f"{len(anomalies.warnings)} warning findings; drift measured on {len(drift)} features.{largest}")


def _cells(f: Finding, text) -> list[str]:
    def number(v: float | None) -> str:
        return "" if v is None else f"{v:.4g}"

    return [f.verdict, text(f.subject), f.kind, f.statistic, number(f.measured), number(f.threshold), text(f.message)]


def _table(findings: list[Finding]) -> str:
    return table(_HEADER, [_cells(f, str) for f in findings])


def _distributions(drift: list[Finding], sides: Sides) -> list[str]:
    figures = [figure(_bars, f.feature, *_binned(f, sides.baseline[f.feature], sides.new[f.feature]),
                      size=(5.6, 3.8)) for f in drift if f.verdict != "pass"]
    return ["<h2>Distributions of the drifted features</h2>", *figures] if figures else []


def _binned(drift: Finding, base: Profile, new: Profile) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """Both sides as fractions over the same bins: the most frequent values (or a text's tokens), or the
    baseline's quantile bins of the distribution the finding measured (a text's bytes or tokens per value)."""
    if drift.statistic == "l_infinity":
        values = sorted({*base.values, *new.values}, key=lambda v: -(base.values.get(v, 0) + new.values.get(v, 0)))
        values = values[:SHOWN_CATEGORIES]
        fractions = [np.array([side.values.get(v, 0.0) for v in values]) / max(sum(side.values.values()), 1)
                     for side in (base, new)]
        return values, *fractions, f"{base.name} (most frequent values)"
    what = drift.statistic[len(TEXT_DRIFT):] if drift.statistic.startswith(TEXT_DRIFT) else ""
    histograms = (base.distributions[what], new.distributions[what]) if what else (base.histogram, new.histogram)
    edges, p, q = distance.common_bins(*histograms)
    n = [_number(e) for e in edges]
    last = len(n) - 2  # the last inner bin holds its upper boundary
    pairs = enumerate(zip(n[:-1], n[1:], strict=True))
    inner = [f"[{lo}, {hi}{']' if i == last else ')'}" for i, (lo, hi) in pairs] or n
    labels = [f"< {n[0]}", *inner, f"> {n[-1]}"]
    name = f"{base.name} {what.replace('_', ' ')}" if what else base.name
    return labels, p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12), f"{name} (baseline's quantile bins)"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _bars(ax, name: str, labels: list[str], base: np.ndarray, new: np.ndarray, xlabel: str) -> None:
    """Both sides' bars next to each other in every bin, so that each bin compares at a glance."""
    x = np.arange(len(labels))
    ax.bar(x - 0.2, base, 0.4, color="#4a7fc1", label="baseline")
    ax.bar(x + 0.2, new, 0.4, color="#e07b39", label="new examples")
    ax.set_xticks(x, labels, rotation=90, fontsize=6)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("fraction of rows", fontsize=8)
    ax.legend(fontsize=7)
