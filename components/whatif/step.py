"""The whatif step: a trained model and the test split in; `whatif.json` and `report.html` out.

The report does what people used the What-If Tool for: performance by slice
(per class for image models), partial dependence with ICE lines, nearest
counterfactuals, threshold and fairness analysis for binary labels, and for
image models the most-confused examples with occlusion saliency. Slices are
the run's `evaluate.slices` and bins, so both reports group examples alike;
a section with nothing to show says why.

Given a second model (`compare`: the production model, or any other on the
same label), the document and the report also hold the two side by side
(components.whatif.comparison): each metric overall and per slice with the
difference and its bootstrap interval, where they disagree, both calibrations
and both partial dependences; the report opens with the verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from components.common import io
from components.common.config import EvaluateConfig, WhatIfConfig
from components.common.model_loading import load_model
from components.common.registry import Registry
from components.common.schema import Feature, Schema
from components.common.signatures import DTYPES
from components.common.task import Task, task_of
from components.evaluate import metrics as metrics_lib, slices
from components.evaluate.step import TestSplit, predict, read_test_split, score
from components.whatif import analysis, comparison, report
from components.whatif.document import (
    Comparison,
    Counterfactual,
    PartialDependence,
    SaliencyExample,
    SliceDifferences,
    SliceMetrics,
    Thresholds,
    WhatIfDocument,
    WhatIfError,
    WhyEmpty,
    nested,
)

log = logging.getLogger("tfpipe.whatif")

Scored = Callable[[np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class WhatIfResult:
    out: str
    document: WhatIfDocument


@dataclass(frozen=True)
class Compared:
    """The model to compare with: where it is (a train output folder or a model.keras), and its name for people."""

    model: str
    name: str = ""  # empty: the path


def registry_baseline(home: str) -> Compared | None:
    """What the evaluate step compares a new model with (`Registry.baseline`: the production version, else the
    newest blessed one), named as people know it; None on a first run."""
    found = Registry(home).baseline()
    if found is None:
        return None
    return Compared(found.model, found.why if found.version is None else f"{found.why}, version {found.version}")


def run(cfg: WhatIfConfig, model_dir: str, examples: str, out: str, evaluate: EvaluateConfig,
        compare: Compared | None = None) -> WhatIfResult:
    """`evaluate` is the run's evaluate section: its slices and numeric bins group the examples as evaluate's do;
    `compare`, a model on the same label to hold the model against."""
    cfg.validate()
    evaluate.validate()
    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(model_dir, schema)
    baseline = load_model(compare.model, schema, what="model to compare with") if compare else None
    test = read_test_split(examples, schema, task, 256)
    outputs = predict(model, test.data)
    tabular = [f for f in schema.inputs if f.type != "image"]
    images = [f for f in schema.inputs if f.type == "image"]
    swept = [f.name for f in tabular if f.type != "text" and not f.is_list]

    def scored(mask: np.ndarray) -> dict[str, float]:
        return metrics_lib.scalars(score(task, test.labels[mask], outputs[mask], curves=False))

    by_slice = tuple(SliceMetrics(**row) for row in slices.compute(schema, evaluate, test.features, scored))
    found, why_not_found = _counterfactuals(cfg, task, tabular, test, outputs, images)
    document = WhatIfDocument(
        task=task.kind, label=schema.label, classes=task.classes, count=int(len(test.labels)),
        overall=scored(np.ones(len(test.labels), bool)), slices=by_slice, per_class=_per_class(task, test, scored),
        partial_dependence=_partial_dependences(cfg, model, schema, tabular, swept, test),
        counterfactuals=found, thresholds=_thresholds(cfg, task, test, outputs, tabular),
        images=_image_analysis(model, images[0].name, task, test, outputs, cfg) if images and task.classes else (),
        why_empty=WhyEmpty(
            slices="" if by_slice else slices.why_none(schema),
            partial_dependence="" if swept else _only_images(images, "partial dependence sweeps tabular features")
            if not tabular else "Not computed: partial dependence sweeps numbers and categories over their values, "
                                "and the model reads only text and images, which have none.",
            counterfactuals=why_not_found,
            thresholds="" if len(task.classes) == 2 else
            f"Threshold analysis is for binary labels; {schema.label!r} {_has_what(task)}.",
            images=_why_no_images(task, images, test, outputs)),
        comparison=_compare(cfg, evaluate, schema, task, test, outputs, baseline, compare, model_dir, tabular, swept,
                            images) if compare else None)
    with io.staged_dir(out) as stage:
        document.write(stage)
        io.write_text(f"{stage}/report.html", report.html(document))
    log.info("whatif: %d test examples, %d slices, %d partial dependences -> %s", document.count,
             len(document.slices), len(document.partial_dependence), out)
    return WhatIfResult(out, document)


def _compare(cfg: WhatIfConfig, evaluate: EvaluateConfig, schema: Schema, task: Task, test: TestSplit,
             outputs: np.ndarray, baseline: keras.Model, compare: Compared, model_dir: str, tabular: list[Feature],
             swept: list[str], images: list[Feature]) -> Comparison:
    """The model (the candidate) against `baseline` on the same test rows, overall and per slice."""
    name = compare.name or compare.model
    theirs = predict(baseline, test.data)
    comparison.check_same_task(task, outputs, theirs, name)
    metrics = comparison.per_row(task, test.labels, outputs, theirs)
    classified = task.kind == "classification"
    disagree = outputs.argmax(axis=1) != theirs.argmax(axis=1) if classified else np.zeros(len(test.labels), bool)
    # evaluate's slices of the rows in memory, each as its mask: `compute` records whatever its score returns
    groups = [(row["feature"], row["slice"], row["metrics"])
              for row in slices.compute(schema, evaluate, test.features, lambda mask: mask)]
    groups += [("true class", c, test.labels == i) for i, c in enumerate(task.classes)]
    by_slice = tuple(SliceDifferences(feature, value, int(mask.sum()),
                                      comparison.differences(metrics, np.flatnonzero(mask), cfg.bootstrap_resamples),
                                      int(disagree[mask].sum()))
                     for feature, value, mask in groups if mask.any())
    overall = comparison.differences(metrics, np.arange(len(test.labels)), cfg.bootstrap_resamples)
    return Comparison(
        model_dir, name, cfg.bootstrap_resamples, overall, comparison.findings(overall, by_slice),
        by_slice, int(disagree.sum()),
        comparison.most_confident_disagreements(task, test.labels, outputs, theirs, test.features,
                                                cfg.disagreement_examples, _pictures(test, images[0].name)
                                                if images else None) if classified else (),
        (comparison.calibration(test.labels, outputs), comparison.calibration(test.labels, theirs))
        if classified else (),
        _partial_dependences(replace(cfg, ice_examples=0), baseline, schema, tabular, swept, test),
        "" if classified else "Not computed: the models predict a number, so there are no classes to disagree on; "
                              "the differences above say how far apart they are.")


def _per_class(task: Task, test: TestSplit, scored: Scored) -> tuple[SliceMetrics, ...]:
    return tuple(SliceMetrics("true class", c, int(np.sum(test.labels == i)), scored(test.labels == i))
                 for i, c in enumerate(task.classes) if np.any(test.labels == i))


def _partial_dependences(cfg: WhatIfConfig, model: keras.Model, schema: Schema, tabular: list[Feature],
                         swept: list[str], test: TestSplit) -> tuple[PartialDependence, ...]:
    """Over `cfg.features`, or every number and category (`swept`): a text or a list is not swept, as no grid
    of texts or lists means anything (each is its own value); the model still reads the examples' own."""
    unswept = [name for name in cfg.features if name not in swept]
    if unswept:
        raise WhatIfError(f"whatif.features: {unswept} are text or lists; partial dependence sweeps numbers and "
                          f"categories ({swept})")
    if not swept:
        return ()
    predict_rows = _tabular_predictor(model, tabular)
    names = list(cfg.features) or swept
    return tuple(analysis.partial_dependence(
        predict_rows, test.features, name,
        analysis.grid(test.features[name], schema.feature(name).is_numeric, cfg.grid_points),
        schema.feature(name).is_numeric, cfg.ice_examples) for name in names)


def _counterfactuals(cfg: WhatIfConfig, task: Task, tabular: list[Feature], test: TestSplit, outputs: np.ndarray,
                     images: list[Feature]) -> tuple[tuple[Counterfactual, ...], str]:
    """(counterfactuals of sampled examples, why there are none)."""
    if not tabular:
        return (), _only_images(images, "counterfactuals are searched over tabular features")
    if task.kind != "classification":
        return (), "Not computed: a counterfactual is the nearest example of another predicted class, and this " \
                   "model predicts a number."
    if cfg.counterfactuals == 0:
        return (), "Not computed: whatif.counterfactuals is 0."
    predicted = outputs.argmax(axis=1)
    numeric = [f.name for f in tabular if f.is_numeric]
    sample = np.random.default_rng(0).permutation(len(predicted))[:cfg.counterfactuals]
    found = tuple(c for c in (analysis.nearest_counterfactual(test.features, numeric, predicted, int(i), task.classes)
                              for i in sample) if c)
    return found, "" if found else (f"None: the model predicts {task.classes[predicted[0]]!r} for every test "
                                    "example, so no example has a neighbour of another class.")


def _thresholds(cfg: WhatIfConfig, task: Task, test: TestSplit, outputs: np.ndarray,
                tabular: list[Feature]) -> Thresholds | None:
    if len(task.classes) != 2:
        return None
    groups = None
    if cfg.fairness_feature:
        if cfg.fairness_feature not in {f.name for f in tabular}:
            raise WhatIfError(f"whatif.fairness_feature: {cfg.fairness_feature!r} is not a tabular input; expected "
                              f"one of {sorted(f.name for f in tabular)}")
        groups = test.features[cfg.fairness_feature]
    return analysis.thresholds(test.labels, outputs[:, 1], cfg.cost_ratio, groups, cfg.fairness_feature)


def _only_images(images: list[Feature], what: str) -> str:
    return f"Not computed: the model reads only images ({', '.join(f.name for f in images)}), and {what}."


def _has_what(task: Task) -> str:
    return f"has {len(task.classes)} classes" if task.classes else "is a number"


def _why_no_images(task: Task, images: list[Feature], test: TestSplit, outputs: np.ndarray) -> str:
    """Why a model that reads images has no most-confused examples ("" for a model without images)."""
    if not images:
        return ""
    if not task.classes:
        return "Not computed: the saliency maps explain a predicted class, and this model predicts a number."
    if np.all(outputs.argmax(axis=1) == test.labels):
        return "None: every test example is classified correctly."
    return ""


def _tabular_predictor(model: keras.Model, inputs: list[Feature]):
    """A function from feature columns (numpy) to model outputs, feeding the model as training did."""
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def predict_rows(features: dict[str, np.ndarray]) -> np.ndarray:
        batch = {f.name: tf.ragged.constant([list(v) for v in features[f.name]], dtype=DTYPES[f.type], ragged_rank=1)
                 if f.is_list else
                 tf.constant(np.asarray(features[f.name]).reshape(-1, 1).tolist(), dtype=DTYPES[f.type])
                 for f in inputs}
        return forward(batch).numpy()

    return predict_rows


def _pictures(test: TestSplit, name: str) -> np.ndarray:
    """Every test image of feature `name`, [example, row, column, channel]."""
    return np.concatenate([x[name].numpy() for x, _ in test.data])


def _image_analysis(model: keras.Model, name: str, task: Task, test: TestSplit, outputs: np.ndarray,
                    cfg: WhatIfConfig) -> tuple[SaliencyExample, ...]:
    """The most confidently wrong test images, each with its occlusion saliency map."""
    single = isinstance(model, keras.Sequential)
    pictures = _pictures(test, name)

    def predict_images(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch if single else {name: batch}, training=False))

    return tuple(
        SaliencyExample(i, task.classes[int(test.labels[i])], task.classes[int(outputs[i].argmax())],
                        float(outputs[i].max()), nested(pictures[i].tolist()),
                        nested(analysis.occlusion(predict_images, pictures[i], cfg.occlusion_patch).tolist()))
        for i in analysis.most_confused(test.labels, outputs, cfg.saliency_examples))
