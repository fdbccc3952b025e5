"""report.html: every window's requests, what crossed, the distributions behind it side by side, the anomalies."""

from __future__ import annotations

import numpy as np

from components.common.page import escape, figure, legend, page, section, table
from components.monitor.findings import Findings, Window
from components.validate import distance
from components.validate.profile import Profile

MAX_FIGURES = 24  # figures drawn; past this many crossed features, the tables still list them all
SHOWN_CATEGORIES = 15  # bars per categorical plot: the most frequent values of any side
COLOURS = {"training": "#4a7fc1", "previous window": "#9a9a9a", "this window": "#e07b39"}


def html(findings: Findings, training: dict[str, Profile], windows: dict[int, dict[str, Profile]]) -> str:
    """`windows`: each window's profiles by its start."""
    parts = ["<h1>Serving monitor</h1>", f"<p>{escape(findings.headline())}</p>", _sources(findings)]
    if findings.damaged_files:
        parts.append(section("Damaged log files", [table(
            ["file", "records read", "problem"], [[d.path, d.records, d.error] for d in findings.damaged_files])]))
    if findings.unfinished_files:
        parts.append(section("Unfinished log files", [
            "<p>Files their server never closed: killed (SIGKILL, a lost node) or still writing them. Their whole "
            "records are read; the bytes after the last one are a record cut in the middle of its write.</p>",
            table(["file", "records read", "bytes torn off"],
                  [[u.path, u.records, u.torn_bytes] for u in findings.unfinished_files])]))
    parts += [section("Windows", [_windows(findings)] if findings.windows else [],
                      "No request was logged in the time asked for."),
              section("Distributions of what crossed", _figures(findings, training, windows),
                      "No threshold was crossed."),
              section("Requests that do not fit the schema", [_anomalies(findings)] if any(
                  w.anomalies for w in findings.windows) else [], "Every request fits the training schema."),
              section("Every measurement", [_measurements(findings)] if any(
                  w.measurements for w in findings.windows) else [], "Nothing was measured: no request.")]
    return page("tfpipe serving monitor", parts)


def _sources(findings: Findings) -> str:
    return (f"<p>Request logs <code>{escape(findings.log_dir)}</code> ({findings.files} files) against the training "
            f"examples <code>{escape(findings.training)}</code>, in windows of {findings.window_seconds:g} s. "
            f"Skew: a window against training; drift: a window against the one with requests before it. "
            f"Retrain on: {escape(findings.retrain_on)}.</p>")


def _windows(findings: Findings) -> str:
    def names(window: Window, kind: str) -> str:
        return ", ".join(m.subject for m in window.crossed(kind))

    rows = [[w.span, w.requests, w.rows, names(w, "skew"), names(w, "drift"),
             sum(a.requests for a in w.anomalies)] if w.requests else
            [w.span, 0, 0, "no requests in this window", "", ""] for w in findings.windows]
    return table(["window", "requests", "rows", "skew crossed", "drift crossed", "requests not fitting"], rows)


def _anomalies(findings: Findings) -> str:
    return table(["window", "kind", "feature", "requests", "first problem"],
                 [[w.span, a.kind, a.feature, a.requests, a.message] for w in findings.windows for a in w.anomalies])


def _measurements(findings: Findings) -> str:
    rows = [[w.span, m.kind, m.subject, m.statistic, m.measured, m.threshold, "CROSSED" if m.crossed else "",
             m.at] for w in findings.windows for m in w.measurements]
    return table(["window", "kind", "of", "statistic", "measured", "threshold", "", "differs most at"], rows)


def _figures(findings: Findings, training: dict[str, Profile], windows: dict[int, dict[str, Profile]]) -> list[str]:
    """One figure per window and crossed feature: training, the previous window and this one."""
    wanted = [(w, name) for w in findings.windows
              for name in dict.fromkeys(m.feature for m in w.measurements if m.crossed)]
    figures = []
    for window, name in wanted[:MAX_FIGURES]:
        sides = {"training": training[name], "this window": windows[window.start][name]}
        if window.drift_against is not None:
            sides = {**sides, "previous window": windows[window.drift_against][name]}
        subject = next(m for m in window.measurements if m.feature == name)
        figures.append(figure(_bars, f"{subject.subject}, {window.span}", *_binned(sides), size=(6.0, 3.8)))
    if len(wanted) > MAX_FIGURES:
        figures.append(f"<p class='empty'>{len(wanted) - MAX_FIGURES} more crossed features are not drawn; the "
                       "tables list them.</p>")
    return figures


def _binned(sides: dict[str, Profile]) -> tuple[list[str], dict[str, np.ndarray], str]:
    """Every side as fractions over the same bins: training's quantile bins, or the most frequent values."""
    training = sides["training"]
    if training.categorical:
        totals = {v: sum(s.values.get(v, 0) for s in sides.values()) for s in sides.values() for v in s.values}
        values = sorted(totals, key=lambda v: -totals[v])[:SHOWN_CATEGORIES]
        return values, {k: np.array([s.values.get(v, 0.0) for v in values]) / max(sum(s.values.values()), 1)
                        for k, s in sides.items()}, "value (the most frequent)"
    binned = {k: distance.common_bins(training.histogram, s.histogram) for k, s in sides.items()}
    edges = binned["training"][0]
    text = [f"{e:,.0f}" if abs(e) >= 1000 else f"{e:.3g}" for e in edges]
    labels = [f"< {text[0]}", *(f"{lo} to {hi}" for lo, hi in zip(text[:-1], text[1:], strict=True)), f"> {text[-1]}"]
    return labels, {k: counts / max(counts.sum(), 1e-12) for k, (_, _, counts) in binned.items()}, \
        "value (training's quantile bins)"


def _bars(ax, title: str, labels: list[str], fractions: dict[str, np.ndarray], xlabel: str) -> None:
    """The sides' bars next to each other in every bin, so that each bin compares at a glance."""
    x = np.arange(len(labels))
    width = 0.8 / len(fractions)
    for i, name in enumerate(k for k in COLOURS if k in fractions):
        ax.bar(x + (i - (len(fractions) - 1) / 2) * width, fractions[name], width, color=COLOURS[name], label=name)
    ax.set_xticks(x, labels, rotation=90, fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("fraction of rows", fontsize=8)
    legend(ax)
