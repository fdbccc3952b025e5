"""report.html (every finding, and both distributions of every drifted feature) and report.md (for the run summary)."""

from __future__ import annotations

import numpy as np

from components.common.page import escape, figure, page, table
from components.validate import plots
from components.validate.anomalies import Anomalies, Finding
from components.validate.checks import TEXT_DRIFT, Sides
from components.validate.profile import Profile

COLOURS = {"baseline": "#4a7fc1", "new examples": "#e07b39"}
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
    figures = []
    for f in (f for f in drift if f.verdict != "pass"):
        labels, fractions, xlabel = _binned(f, sides.baseline[f.feature], sides.new[f.feature])
        figures.append(figure(plots.bars, f.feature, labels, fractions, COLOURS, xlabel, size=(5.6, 3.8)))
    return ["<h2>Distributions of the drifted features</h2>", *figures] if figures else []


def _binned(drift: Finding, base: Profile, new: Profile) -> tuple[list[str], dict[str, np.ndarray], str]:
    """Both sides as fractions over the same bins: the most frequent values (or a text's tokens), or the
    baseline's quantile bins of the distribution the finding measured (a text's bytes or tokens per value)."""
    sides = {"baseline": base, "new examples": new}
    if drift.statistic == "l_infinity":
        return *plots.categories(sides), f"{base.name} (most frequent values)"
    what = drift.statistic[len(TEXT_DRIFT):] if drift.statistic.startswith(TEXT_DRIFT) else ""
    histograms = {k: side.distributions[what] if what else side.histogram for k, side in sides.items()}
    name = f"{base.name} {what.replace('_', ' ')}" if what else base.name
    return *plots.quantile_bins(histograms["baseline"], histograms), f"{name} (baseline's quantile bins)"
