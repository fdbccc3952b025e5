"""What the pipeline layer logs to KFP's metric artifacts, from an evaluation's `metrics.json`.

Plain functions, so that components never import kfp: `pipelines/ops.py`
passes `scalars(...)` to `Output[Metrics].log_metric`, `confusion_matrix(...)`
to `Output[ClassificationMetrics].log_confusion_matrix` and `roc_curve(...)`
to its `log_roc_curve`.
"""

from __future__ import annotations

from components.common.evaluation_records import MetricsDocument


def scalars(document: MetricsDocument) -> dict[str, float]:
    """The overall scalar metrics (per-class precision / recall / F1 included)."""
    return document.overall.scalars()


def confusion_matrix(document: MetricsDocument) -> tuple[list[str], list[list[int]]] | None:
    if document.task != "classification":
        return None
    return list(document.classes), [list(row) for row in document.overall.confusion_matrix]


def roc_curve(document: MetricsDocument) -> tuple[list[float], list[float], list[float]] | None:
    """(fpr, tpr, thresholds): the positive class's curve for a binary label, else the micro average."""
    if document.task != "classification":
        return None
    curves = document.overall.roc
    curve = curves.get("micro") or next(iter(curves.values()))
    return list(curve.fpr), list(curve.tpr), list(curve.thresholds)
