"""report.html for a What-If analysis: plots first, numbers after, all inline (the KFP UI shows it).

It reads the typed `WhatIfDocument`. A section that applies to the model but
has nothing to show says why; the partial-dependence plot is also what the
interactive page draws, so both read alike. A document that compares two
models opens with the verdict (where the candidate is better, where worse, by
how much, beyond noise only), then both models side by side.
"""

from __future__ import annotations

import numpy as np

from components.common.page import Marked, colour_bar, escape, figure, legend, page, section, shown, table
from components.whatif.document import (
    Calibration,
    Comparison,
    Counterfactual,
    Difference,
    Finding,
    PartialDependence,
    SaliencyExample,
    Thresholds,
    WhatIfDocument,
)

KEYS = {"classification": ("accuracy", "loss", "balanced_accuracy"), "regression": ("mae", "rmse", "r2")}


def html(document: WhatIfDocument) -> str:
    keys = KEYS[document.task]
    overall = ", ".join(f"{k} {document.overall[k]:.4f}" for k in keys if k in document.overall)
    compared = document.comparison
    baselines = {pd.feature: pd for pd in compared.partial_dependence} if compared else {}
    parts = ["<h1>What-If analysis</h1>", *(_comparison(compared, document.classes) if compared else []),
             f"<p>{document.count:,} test examples. {overall}.</p>",
             _slices(document, keys),
             _section("Partial dependence",
                      "The mean prediction as one feature sweeps its range, every other feature as it is; thin "
                      "grey lines follow single examples (ICE) for the last class (or the predicted value)"
                      + ("; dashed lines: the baseline's mean." if compared else "."),
                      [partial_dependence_figure(pd, document.classes, document.label,
                                                 baseline=baselines.get(pd.feature))
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
                              marker=None, baseline: PartialDependence | None = None) -> str:
    """The plot of one partial dependence; `marker` draws a line at one value of the feature (the page's);
    `baseline`, another model's over the same grid, dashed in the same colours."""
    return figure(_partial_dependence, pd, classes, label, marker, baseline, size=(4.4, 3.4))


def _comparison(c: Comparison, classes: tuple[str, ...]) -> list[str]:
    """The verdict first, then both models side by side: overall and per slice, calibration, disagreements."""
    better = [f for f in c.findings if f.difference.better == "candidate"]
    worse = [f for f in c.findings if f.difference.better == "baseline"]
    verdict = [f"<p>The candidate <code>{escape(c.candidate)}</code> against the baseline "
               f"<code>{escape(c.baseline)}</code>, on the same test rows; a difference counts when its 95% "
               f"interval over {c.resamples:,} bootstrap resamples of the rows leaves out 0.</p>"]
    for title, found in (("Better", better), ("Worse", worse)):
        verdict.append(f"<p id='verdict-{title.lower()}'><b>{title}:</b> "
                       + ("; ".join(_finding(f) for f in found) if found else "nowhere beyond noise") + ".</p>")
    if not c.findings:
        verdict.append("<p><b>No difference beyond noise</b>, overall or in any slice.</p>")
    rows = [["overall", "", None, *_cells(d), c.disagreements if classes else None] for d in c.overall]
    rows += [[s.feature, s.slice, s.count, *_cells(d), s.disagreements if classes else None]
             for s in c.slices for d in s.differences]
    parts = [section("Verdict", verdict),
             section("Candidate and baseline", [table(
                 ["feature", "slice", "count", "metric", "candidate", "baseline", "difference", "95% interval",
                  "beyond noise", "disagreements"], rows)])]
    if c.calibration:
        ece = ", ".join(f"{who} {cal.ece:.4f}" for who, cal in zip(("candidate", "baseline"), c.calibration,
                                                                       strict=True))
        parts.append(section("Calibration", [f"<p>Expected calibration error: {ece}.</p>",
                                             figure(_calibration, c.calibration)]))
    if c.most_confident:
        names = [v.feature for v in c.most_confident[0].values]
        images = [figure(_picture, d.image, f"#{d.example}", size=(1.4, 1.6)) for d in c.most_confident if d.image]
        parts.append(section("Disagreements", [
            f"<p>{c.disagreements:,} test rows are put in different classes (by slice: the table above). "
            "The ones where both models are surest (a wrong answer highlighted):</p>",
            table(["#", "true", "candidate", "confidence", "baseline", "confidence", *names],
                  [[d.example, d.true, Marked(d.candidate) if d.candidate != d.true else d.candidate,
                    d.candidate_confidence, Marked(d.baseline) if d.baseline != d.true else d.baseline,
                    d.baseline_confidence, *(v.value for v in d.values)] for d in c.most_confident]), *images]))
    elif c.why_no_disagreements or classes:
        parts.append(section("Disagreements", [], c.why_no_disagreements or
                             "None: the two models put every test row in the same class."))
    return parts


def _cells(d: Difference) -> list:
    return [d.metric, d.candidate, d.baseline, f"{d.difference:+.4g}", f"{d.low:+.4g} to {d.high:+.4g}",
            Marked(f"{d.better} better") if d.better != "neither" else "no"]


def _finding(f: Finding) -> str:
    d = f.difference
    return (f"{escape(f.where)}: {escape(d.metric)} {d.candidate:.4g} against {d.baseline:.4g} "
            f"({d.difference:+.4g}, 95% interval {d.low:+.4g} to {d.high:+.4g})")


def _calibration(ax, both: tuple[Calibration, ...]) -> None:
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="perfectly calibrated")
    for who, cal, style in zip(("candidate", "baseline"), both, ("-", "--"), strict=True):
        ax.plot([b.confidence for b in cal.bins], [b.accuracy for b in cal.bins], marker="o", linestyle=style,
                label=f"{who} (ECE {cal.ece:.3f})")
    ax.set(title="calibration", xlabel="confidence (top-class probability)", ylabel="accuracy",
           xlim=(0, 1.02), ylim=(0, 1.02))
    legend(ax)


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


def _partial_dependence(ax, pd: PartialDependence, classes: tuple[str, ...], label: str, marker,
                        baseline: PartialDependence | None) -> None:
    mean = np.asarray(pd.mean, dtype=float)
    x = list(pd.grid) if pd.numeric else list(range(len(pd.grid)))
    for j, line in enumerate(pd.ice):
        ax.plot(x, np.asarray(line)[:, -1], color="#bbb", linewidth=0.6,
                label=f"single examples (ICE{f', class {classes[-1]}' if classes else ''})" if j == 0 else "_ice")
    theirs = np.asarray(baseline.mean, dtype=float) if baseline is not None else None
    for k in range(mean.shape[1]):
        name = classes[k] if classes else f"predicted {label}"
        drawn, = ax.plot(x, mean[:, k], linewidth=2, label=name)
        if theirs is not None:
            ax.plot(x, theirs[:, k], linewidth=1.5, linestyle="--", color=drawn.get_color(), label=f"{name} (baseline)")
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


def _picture(ax, pixels: tuple, title: str) -> None:
    """An image as the model reads it, in its own colours (grey levels shown as grey)."""
    image = np.asarray(pixels, dtype=np.uint8)
    ax.imshow(np.repeat(image[..., :1], 3, axis=2) if image.shape[2] < 3 else image)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)


def _saliency(axes, item: SaliencyExample) -> None:
    picture, heat = axes
    _picture(picture, item.image, f"example {item.example}: true {item.true},\npredicted {item.predicted} "
                                  f"({item.confidence:.2f})")
    saliency = np.asarray(item.saliency, dtype=float)
    extent = max(float(np.abs(saliency).max()), 1e-9)
    colour_bar(heat, heat.imshow(saliency, cmap="RdBu_r", vmin=-extent, vmax=extent),
               f"drop in P({item.predicted}) when occluded")
    heat.set_axis_off()
    heat.set_title("occlusion saliency", fontsize=8)
