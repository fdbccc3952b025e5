"""report.html and TensorBoard logs for an evaluation: what people would rather see than read.

The page opens with the verdict (blessed, not blessed, or unchecked when no
threshold is configured) and every check, then the metrics, the
confusion matrix, ROC, precision-recall and reliability (calibration) plots
as inline SVG, per-class numbers and the slices. TensorBoard gets the scalar
metrics and a PR curve per class (or for the positive class of a binary label),
drawn from the accumulators' score histograms.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorboard.plugins.pr_curve import summary as pr_summary

from components.common.evaluation_records import Blessing, Calibration, MetricsDocument
from components.common.page import colour_bar, escape, figure, legend, page, section, table

PR_THRESHOLDS = 101
SLICE_METRICS = {"classification": ("accuracy", "loss", "auc"), "regression": ("mae", "rmse", "r2")}


VERDICTS = {"blessed": ("BLESSED", "ok"), "not blessed": ("NOT BLESSED", "warn"), "unchecked": ("UNCHECKED", "warn")}


def html(document: MetricsDocument, blessing: Blessing) -> str:
    overall = document.overall
    verdict, style = VERDICTS[blessing.verdict]
    parts = [
        "<h1>Evaluation</h1>",
        f"<p>Model <code>{escape(document.model)}</code> on {overall.count:,} test examples of "
        f"<code>{escape(document.examples)}</code>.</p>",
        f"<h2 id='verdict' class='{style}'>{verdict}</h2>",
        f"<p class='{style}'>{escape(blessing.note)}</p>" if blessing.note else "",
        section("Checks", [table(["metric", "check", "threshold", "value", "baseline", "verdict", "reason"],
                                 [[c.metric, c.check, c.threshold, c.value, c.baseline, c.verdict, c.reason]
                                  for c in blessing.checks])] if blessing.checks else [],
                why_empty="No checks ran: evaluate.thresholds is empty."),
        "<h2>Metrics</h2>",
        table(["metric", "value", "baseline"],
              [[k, v, (document.baseline or {}).get(k)] for k, v in {"count": overall.count, **overall.values}.items()
               if v is not None]),
    ]
    if document.task == "classification":
        parts += ["<h2>Plots</h2>", figure(_confusion, overall.confusion_matrix, document.classes, size=(4.8, 3.6)),
                  figure(_curves, {name: (c.fpr, c.tpr, c.auc) for name, c in overall.roc.items()}, "ROC",
                         "false positive rate", "true positive rate"),
                  figure(_curves, {name: (c.recall, c.precision, c.auc) for name, c in overall.pr.items()},
                         "precision-recall", "recall", "precision"),
                  figure(_reliability, overall.calibration),
                  "<h2>Per class</h2>",
                  table(["class", "precision", "recall", "f1", "support"],
                        [[c, v.precision, v.recall, v.f1, v.support] for c, v in overall.per_class.items()])]
    keys = SLICE_METRICS[document.task]
    rows = [[s.feature, s.slice, s.count, *(s.metrics.get(k) for k in keys)] for s in document.slices]
    parts.append(section("Slices", [table(["feature", "slice", "count", *keys], rows)] if rows else [],
                         why_empty=document.slices_note))
    return page("tfpipe evaluation", parts)


def _confusion(ax, confusion: tuple[tuple[int, ...], ...], classes: tuple[str, ...]) -> None:
    matrix = np.array(confusion)
    colour_bar(ax, ax.imshow(matrix, cmap="Blues"), "test examples")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if v > matrix.max() / 2 else "black")
    ax.set(title="confusion matrix", xlabel="predicted", ylabel="true")


def _curves(ax, curves: dict[str, tuple[tuple[float, ...], tuple[float, ...], float | None]], title: str,
            xlabel: str, ylabel: str) -> None:
    """Each named curve's (x, y, area); an undefined one (a single outcome) has no points."""
    drawn = [ax.plot(x, y, label=f"{name} (area {auc:.3f})") for name, (x, y, auc) in curves.items() if x]
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    if drawn:
        legend(ax, loc="lower right" if title == "ROC" else "lower left")
    else:
        ax.text(0.5, 0.5, "undefined: the test split\nholds only one outcome", ha="center", va="center")


def _reliability(ax, calibration: Calibration) -> None:
    bins = calibration.bins
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], marker="o", label="model")
    ax.set(title=f"reliability (ECE {calibration.ece:.3f})", xlabel="confidence", ylabel="accuracy",
           xlim=(0, 1), ylim=(0, 1.02))
    legend(ax, loc="upper left")


def tensorboard(logdir: str, scalars: dict[str, float], histograms: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Scalar metrics and a PR curve per class's (positives, examples) score histograms, in a `logs/` folder
    TensorBoard reads as the run `evaluation`."""
    writer = tf.summary.create_file_writer(f"{logdir}/evaluation")
    with writer.as_default():
        for name, value in scalars.items():
            tf.summary.scalar(name, value, step=0)
        for name, (positives, examples) in histograms.items():
            tf.summary.experimental.write_raw_pb(_pr_curve(name, positives, examples).SerializeToString(), step=0)
    writer.close()


def _pr_curve(name: str, positives: np.ndarray, examples: np.ndarray):
    """The summary `pr_summary.pb` writes (tag "<name>/pr_curves"), at PR_THRESHOLDS thresholds from the
    histograms: counts at or above each threshold, the highest (1.0) holding none."""
    at = np.arange(PR_THRESHOLDS - 1) * (len(examples) // (PR_THRESHOLDS - 1))
    tp = np.append(np.cumsum(positives[::-1])[::-1][at], 0)
    fp = np.append(np.cumsum((examples - positives)[::-1])[::-1][at], 0)
    tn, fn = fp[0] - fp, tp[0] - tp
    return pr_summary.raw_data_pb(name, tp, fp, tn, fn, tp / np.maximum(1e-7, tp + fp), tp / np.maximum(1e-7, tp + fn),
                                  num_thresholds=PR_THRESHOLDS)
