"""report.html for a What-If analysis: plots first, numbers after, all inline (the KFP UI shows it)."""

from __future__ import annotations

import numpy as np

from components.common.page import escape, figure, page, table

KEYS = {"classification": ("accuracy", "loss", "balanced_accuracy"), "regression": ("mae", "rmse", "r2")}


def html(document: dict) -> str:
    keys = KEYS[document["task"]]
    parts = ["<h1>What-If analysis</h1>",
             f"<p>{document['count']:,} test examples. " +
             ", ".join(f"{k} {document['overall'][k]:.4f}" for k in keys if k in document["overall"]) + ".</p>"]
    rows = document["slices"] + document.get("per_class", [])
    if rows:
        parts += ["<h2>Performance by slice</h2>",
                  table(["feature", "slice", "count", *keys],
                        [[r["feature"], r["slice"], r["count"], *(r["metrics"].get(k) for k in keys)] for r in rows])]
    if document.get("partial_dependence"):
        parts.append("<h2>Partial dependence</h2><p>The mean prediction as one feature sweeps its range, every "
                     "other feature as it is; thin lines follow single examples (ICE) for the last class "
                     "(or the predicted value).</p>")
        for name, pd in document["partial_dependence"].items():
            parts.append(figure(_partial_dependence, name, pd, document["classes"], size=(4.2, 3.2)))
    if document.get("counterfactuals"):
        parts += ["<h2>Nearest counterfactuals</h2><p>For sampled examples, the closest one the model puts in "
                  "another class (L1 over standardised numbers, plus one per differing string).</p>",
                  table(["example", "counterfactual", "distance", "features that differ"],
                        [[c["example"], c["counterfactual"], c["distance"], ", ".join(c["differs"])]
                         for c in document["counterfactuals"]])]
    if "thresholds" in document:
        t = document["thresholds"]
        parts += ["<h2>Threshold</h2>", figure(_thresholds, t),
                  f"<p>Cheapest threshold at cost ratio {t['cost_ratio']:g} (false positive : false negative): "
                  f"<b>{t['best']['threshold']:.2f}</b> (precision {t['best']['precision']:.3f}, recall "
                  f"{t['best']['recall']:.3f}).</p>"]
        if "groups" in t:
            parts.append(table(["group", "count", "demographic parity threshold", "equal opportunity threshold"],
                               [[g, v["count"], v["demographic_parity"], v["equal_opportunity"]]
                                for g, v in t["groups"].items()]))
    for item in document.get("images", []):
        parts.append(figure(_saliency, item, document["classes"], size=(5.0, 2.6)))
    return page("tfpipe What-If", parts)


def _partial_dependence(ax, name: str, pd: dict, classes: list[str]) -> None:
    mean = np.asarray(pd["mean"])
    numeric = all(isinstance(v, (int, float)) for v in pd["grid"])
    x = pd["grid"] if numeric else list(range(len(pd["grid"])))
    for line in np.asarray(pd["ice"]):
        ax.plot(x, line[:, -1], color="#bbb", linewidth=0.6)
    for k in range(mean.shape[1]):
        ax.plot(x, mean[:, k], linewidth=2, label=classes[k] if classes else "prediction")
    if not numeric:
        ax.set_xticks(x, [escape(v) for v in pd["grid"]], rotation=30)
    ax.set(title=name, xlabel=name, ylabel="probability" if classes else "prediction")
    ax.legend(fontsize=7)


def _thresholds(ax, t: dict) -> None:
    curve = t["curve"]
    x = [r["threshold"] for r in curve]
    ax.plot(x, [r["precision"] for r in curve], label="precision")
    ax.plot(x, [r["recall"] for r in curve], label="recall")
    cost = np.asarray([r["cost"] for r in curve])
    ax.plot(x, cost / max(cost.max(), 1), label="cost (scaled)", linestyle="--")
    ax.axvline(t["best"]["threshold"], color="#999", linewidth=1)
    ax.set(xlabel="threshold", ylim=(0, 1.02))
    ax.legend(fontsize=7)


def _saliency(ax, item: dict, classes: list[str]) -> None:
    image, saliency = np.asarray(item["image"]), np.asarray(item["saliency"])
    ax.imshow(np.hstack([image / max(image.max(), 1), saliency / max(np.abs(saliency).max(), 1e-9)]),
              cmap="magma")
    ax.set_axis_off()
    ax.set_title(f"example {item['example']}: true {classes[item['true']]}, predicted "
                 f"{classes[item['predicted']]} ({item['confidence']:.2f}); right: occlusion saliency", fontsize=8)
