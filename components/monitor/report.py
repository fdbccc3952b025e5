"""report.html: every window's requests, what crossed, the distributions behind it side by side, the anomalies,
and with labels each window's quality beside the blessed evaluation and what the labels could not be joined to."""

from __future__ import annotations

import numpy as np

from components.common.page import Marked, escape, figure, page, section, table
from components.monitor.findings import Findings, LabelsRead, Quality, Window
from components.validate import plots
from components.validate.profile import Profile

MAX_FIGURES = 24  # figures drawn; past this many crossed features, the tables still list them all
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
              *_quality(findings),
              section("Requests that do not fit the schema", [_anomalies(findings)] if any(
                  w.anomalies for w in findings.windows) else [], "Every request fits the training schema."),
              section("Every measurement", [_measurements(findings)] if any(
                  w.measurements for w in findings.windows) else [], "Nothing was measured: no request.")]
    return page("tfpipe serving monitor", parts)


def _sources(findings: Findings) -> str:
    return (f"<p>{escape(findings.read.capitalize())} <code>{escape(findings.log_dir)}</code> ({findings.files} "
            f"files) against the training examples <code>{escape(findings.training)}</code>, in windows of "
            f"{findings.window_seconds:g} s. "
            f"Skew: a window against training; drift: a window against the one with requests before it. "
            f"Retrain on: {escape(', '.join(findings.retrain_on))}.</p>")


def _windows(findings: Findings) -> str:
    def names(window: Window, kind: str) -> str:
        return ", ".join(m.subject for m in window.crossed(kind))

    rows = [[w.span, w.requests, w.rows, names(w, "skew"), names(w, "drift"),
             ", ".join(q.subject for q in w.crossed_quality()), sum(a.requests for a in w.anomalies)]
            if w.requests else [w.span, 0, 0, "no requests in this window", "", "", ""] for w in findings.windows]
    return table(["window", "requests", "rows", "skew crossed", "drift crossed", "quality crossed",
                  "requests not fitting"], rows)


def _quality(findings: Findings) -> list[str]:
    """Each window's quality (overall, then by slice) and its labels' counts; nothing without labels."""
    if findings.labels is None:
        return []
    labelled = [w for w in findings.windows if w.labels is not None]
    counts = table(["window", "predictions", "labelled", "no label (yet)", "late label", "no example key",
                    "key predicted again", "answered without scores", ""],
                   [[w.span, c.predictions, c.labelled, c.unlabelled, c.late, c.no_key, c.duplicated, c.unscored,
                     Marked("inconclusive: too few labels") if c.inconclusive else ""]
                    for w in labelled for c in (w.labels,)])
    overall = [[w.span, *_quality_row(q)] for w in labelled for q in w.quality if not q.feature]
    sliced = [[w.span, q.feature, q.slice, *_quality_row(q)] for w in labelled for q in w.quality if q.feature]
    header = ["metric", "value", "blessed evaluation", "labels", "verdict", "why"]
    return [section("Quality once labels arrived", [_labels_read(findings.labels), table(["window", *header], overall),
                                                    counts]),
            section("Quality by slice", [table(["window", "feature", "slice", *header], sliced)] if sliced else [],
                    "No slice: no labelled prediction, or no feature to slice by (monitor.slices).")]


def _quality_row(q: Quality) -> list:
    verdict = Marked(q.verdict.upper()) if q.crossed else q.verdict
    return [q.metric, "undefined" if q.value is None else q.value, "" if q.blessed is None else q.blessed, q.labels,
            verdict, q.reason]


def _labels_read(labels: LabelsRead) -> str:
    unseen = (f" (e.g. {', '.join(labels.examples_without_prediction)})" if labels.examples_without_prediction
              else "")
    return (f"<p>Labels <code>{escape(labels.source)}</code>: {labels.rows:,} rows in {labels.files} files, "
            f"{labels.used:,} joined to a prediction; {labels.without_prediction:,} keys no logged prediction had"
            f"{escape(unseen)}; {labels.duplicated:,} rows repeated a key (the label known last is kept); "
            f"{labels.incomplete:,} rows without a key or label; {labels.unreadable:,} rows unreadable.</p>")


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
        labels, fractions, xlabel = _binned(sides)
        figures.append(figure(plots.bars, f"{subject.subject}, {window.span}", labels, fractions, COLOURS, xlabel,
                              size=(6.0, 3.8)))
    if len(wanted) > MAX_FIGURES:
        figures.append(f"<p class='empty'>{len(wanted) - MAX_FIGURES} more crossed features are not drawn; the "
                       "tables list them.</p>")
    return figures


def _binned(sides: dict[str, Profile]) -> tuple[list[str], dict[str, np.ndarray], str]:
    """Every side as fractions over the same bins: training's quantile bins, or the most frequent values."""
    training = sides["training"]
    if training.categorical:
        return *plots.categories(sides), "value (the most frequent)"
    histograms = {k: side.histogram for k, side in sides.items()}
    return *plots.quantile_bins(training.histogram, histograms), "value (training's quantile bins)"
