"""report.html for a What-If analysis: plots first, numbers after, all inline (the KFP UI shows it).

It reads the typed `WhatIfDocument`. A section that applies to the model but
has nothing to show says why; the partial-dependence plot is also what the
interactive page draws, so both read alike.
"""

from __future__ import annotations

import numpy as np

from components.common.page import Marked, colour_bar, escape, figure, legend, page, section, shown, table
from components.whatif.document import Counterfactual, PartialDependence, SaliencyExample, Thresholds, WhatIfDocument

KEYS = {"classification": ("accuracy", "loss", "balanced_accuracy"), "regression": ("mae", "rmse", "r2")}


def html(document: WhatIfDocument) -> str:
    keys = KEYS[document.task]
    overall = ", ".join(f"{k} {document.overall[k]:.4f}" for k in keys if k in document.overall)
    parts = ["<h1>What-If analysis</h1>", f"<p>{document.count:,} test examples. {overall}.</p>",
             _slices(document, keys),
             _section("Partial dependence",
                      "The mean prediction as one feature sweeps its range, every other feature as it is; thin "
                      "grey lines follow single examples (ICE) for the last class (or the predicted value).",
                      [partial_dependence_figure(pd, document.classes, document.label)
                       for pd in document.partial_dependence], document.why_empty.partial_dependence),
             _section("Nearest counterfactuals",
                      "For sampled examples, the closest one the model puts in another class (L1 over standardised "
                      "numbers, plus one per differing string); the values that differ are highlighted.",
                      [_counterfactuals(document.counterfactuals)] if document.counterfactuals else [],
                      document.why_empty.counterfactuals),
             _section("Threshold", "", _thresholds(document.thresholds) if document.thresholds else [],
                      document.why_empty.thresholds),
             _section("Most-confused images",
                      "Test images the model gets wrong with the most confidence; beside each, how much the "
                      "predicted class's probability drops when a patch is greyed out (red: the patch drives the "
                      "wrong prediction).",
                      [figure(_saliency, item, size=(5.4, 2.6), panels=2) for item in document.images],
                      document.why_empty.images)]
    return page("tfpipe What-If", parts)


def partial_dependence_figure(pd: PartialDependence, classes: tuple[str, ...], label: str,
                              marker=None) -> str:
    """The plot of one partial dependence; `marker` draws a line at one value of the feature (the page's)."""
    return figure(_partial_dependence, pd, classes, label, marker, size=(4.4, 3.4))


def _section(title: str, intro: str, content: list[str], why_empty: str) -> str:
    """A report section, left out only when it neither applies nor has anything to say."""
    if not content and not why_empty:
        return ""
    return section(title, [f"<p>{escape(intro)}</p>", *content] if content and intro else content, why_empty)


def _slices(document: WhatIfDocument, keys: tuple[str, ...]) -> str:
    rows = [[r.feature, r.slice, r.count, *(r.metrics.get(k) for k in keys)]
            for r in document.slices + document.per_class]
    note = [f"<p class='empty'>{escape(document.why_empty.slices)}</p>"] if document.why_empty.slices else []
    return section("Performance by slice",
                   note + [table(["feature", "slice", "count", *keys], rows)] if rows else [],
                   document.why_empty.slices)


def _counterfactuals(found: tuple[Counterfactual, ...]) -> str:
    """Each example above its counterfactual, feature by feature; the differing values marked."""
    names = [v.feature for v in found[0].values]
    rows = []
    for c in found:
        rows.append(["example", c.example, c.predicted, None,
                     *(Marked(v.example) if v.differs else v.example for v in c.values)])
        rows.append(["nearest of another class", c.counterfactual, c.counterfactual_predicted, c.distance,
                     *(Marked(v.counterfactual) if v.differs else v.counterfactual for v in c.values)])
    return table(["", "#", "predicted", "distance", *names], rows)


def _thresholds(t: Thresholds) -> list[str]:
    parts = [figure(_threshold_curves, t),
             f"<p>Cheapest threshold at cost ratio {t.cost_ratio:g} (false positive : false negative): "
             f"<b>{t.best.threshold:.2f}</b> (precision {t.best.precision:.3f}, recall {t.best.recall:.3f}).</p>"]
    if t.groups:
        parts.append(table([f"group ({t.fairness_feature})", "count", "demographic parity threshold",
                            "equal opportunity threshold"],
                           [[g.group, g.count, g.demographic_parity, g.equal_opportunity] for g in t.groups]))
    return parts


def _partial_dependence(ax, pd: PartialDependence, classes: tuple[str, ...], label: str, marker) -> None:
    mean = np.asarray(pd.mean, dtype=float)
    x = list(pd.grid) if pd.numeric else list(range(len(pd.grid)))
    for j, line in enumerate(pd.ice):
        ax.plot(x, np.asarray(line)[:, -1], color="#bbb", linewidth=0.6,
                label=f"single examples (ICE{f', class {classes[-1]}' if classes else ''})" if j == 0 else "_ice")
    for k in range(mean.shape[1]):
        ax.plot(x, mean[:, k], linewidth=2, label=classes[k] if classes else f"predicted {label}")
    if marker is not None and (pd.numeric or marker in pd.grid):
        ax.axvline(marker if pd.numeric else pd.grid.index(marker), color="#555", linestyle=":",
                   label=f"this example: {shown(marker)}")
    if pd.numeric:
        ax.locator_params(axis="x", nbins=5)  # wide numbers (incomes) would run into each other
    else:
        ax.set_xticks(x, [shown(v) for v in pd.grid], rotation=30, ha="right")
    ax.set(title=f"partial dependence on {pd.feature}", xlabel=pd.feature,
           ylabel="predicted probability" if classes else f"predicted {label}")
    legend(ax)


def _threshold_curves(ax, t: Thresholds) -> None:
    x = [r.threshold for r in t.curve]
    ax.plot(x, [r.precision for r in t.curve], label="precision")
    ax.plot(x, [r.recall for r in t.curve], label="recall")
    cost = np.asarray([r.cost for r in t.curve])
    ax.plot(x, cost / max(cost.max(), 1), label="cost (scaled to its maximum)", linestyle="--")
    ax.axvline(t.best.threshold, color="#999", linewidth=1, label="cheapest threshold")
    ax.set(title="decision threshold", xlabel="threshold on P(positive class)", ylabel="precision, recall, cost",
           ylim=(0, 1.02))
    legend(ax)


def _saliency(axes, item: SaliencyExample) -> None:
    picture, heat = axes
    image = np.asarray(item.image, dtype=np.uint8)
    picture.imshow(np.repeat(image[..., :1], 3, axis=2) if image.shape[2] < 3 else image)
    picture.set_axis_off()
    picture.set_title(f"example {item.example}: true {item.true},\npredicted {item.predicted} "
                      f"({item.confidence:.2f})", fontsize=8)
    saliency = np.asarray(item.saliency, dtype=float)
    extent = max(float(np.abs(saliency).max()), 1e-9)
    colour_bar(heat, heat.imshow(saliency, cmap="RdBu_r", vmin=-extent, vmax=extent),
               f"drop in P({item.predicted}) when occluded")
    heat.set_axis_off()
    heat.set_title("occlusion saliency", fontsize=8)
