"""The whatif step: a trained model and the test split in; `whatif.json` and `report.html` out.

The report does what people used the What-If Tool for: performance by slice
(per class for image models), partial dependence with ICE lines, nearest
counterfactuals, threshold and fairness analysis for binary labels, and for
image models the most-confused examples with occlusion saliency.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from components.common import io
from components.common.config import EvaluateConfig, WhatIfConfig
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.signatures import DTYPES
from components.common.task import task_of
from components.evaluate import metrics as metrics_lib, slices
from components.evaluate.step import predict, read_test_split, score
from components.whatif import analysis, report

log = logging.getLogger("tfpipe.whatif")


@dataclass(frozen=True)
class WhatIfResult:
    out: str
    document: dict


def run(cfg: WhatIfConfig, model_dir: str, examples: str, out: str) -> WhatIfResult:
    cfg.validate()
    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(model_dir, schema)
    test = read_test_split(examples, schema, task, 256)
    outputs = predict(model, test.data)
    tabular = [f for f in schema.inputs if f.type != "image"]
    images = [f for f in schema.inputs if f.type == "image"]
    document = {"task": task.kind, "classes": list(task.classes), "count": int(len(test.labels)),
                "overall": metrics_lib.scalars(score(task, test.labels, outputs, curves=False))}

    def scored(mask):
        return metrics_lib.scalars(score(task, test.labels[mask], outputs[mask], curves=False))

    document["slices"] = slices.compute(schema, EvaluateConfig(), test.features, scored) if tabular else []
    if task.kind == "classification":
        document["per_class"] = [{"feature": "true class", "slice": c, "count": int(np.sum(test.labels == i)),
                                  "metrics": scored(test.labels == i)}
                                 for i, c in enumerate(task.classes) if np.any(test.labels == i)]
    if tabular:
        predict_rows = _tabular_predictor(model, schema)
        names = list(cfg.features) or [f.name for f in tabular]
        document["partial_dependence"] = {
            name: analysis.partial_dependence(
                predict_rows, test.features, name,
                analysis.grid(test.features[name], schema.feature(name).is_numeric, cfg.grid_points),
                cfg.ice_examples) for name in names}
        if task.kind == "classification":
            predicted = outputs.argmax(axis=1)
            numeric = [f.name for f in tabular if f.is_numeric]
            sample = np.random.default_rng(0).permutation(len(predicted))[:cfg.counterfactuals]
            document["counterfactuals"] = [c for c in (analysis.nearest_counterfactual(
                test.features, numeric, predicted, int(i)) for i in sample) if c]
    if task.kind == "classification" and len(task.classes) == 2:
        groups = test.features.get(cfg.fairness_feature) if cfg.fairness_feature else None
        document["thresholds"] = analysis.thresholds(test.labels, outputs[:, 1], cfg.cost_ratio, groups)
    if images and task.kind == "classification":
        document["images"] = _image_analysis(model, images[0].name, test.data, test.labels, outputs, cfg)
    with io.staged_dir(out) as stage:
        io.write_json(f"{stage}/whatif.json", document)
        io.write_text(f"{stage}/report.html", report.html(document))
    log.info("whatif: %d test examples, %d slices, %d partial dependences -> %s", document["count"],
             len(document["slices"]), len(document.get("partial_dependence", {})), out)
    return WhatIfResult(out, document)


def _tabular_predictor(model: keras.Model, schema: Schema):
    """A function from feature columns (numpy) to model outputs, feeding the model as training did."""
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    inputs = [f for f in schema.inputs if f.type != "image"]

    def predict_rows(features: dict[str, np.ndarray]) -> np.ndarray:
        batch = {f.name: tf.constant(np.asarray(features[f.name]).reshape(-1, 1).tolist(), dtype=DTYPES[f.type])
                 for f in inputs}
        return forward(batch).numpy()

    return predict_rows


def _image_analysis(model, name: str, data: tf.data.Dataset, labels, outputs, cfg: WhatIfConfig) -> list[dict]:
    single = isinstance(model, keras.Sequential)
    pictures = np.concatenate([x[name].numpy() for x, _ in data])

    def predict_images(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch if single else {name: batch}, training=False))

    found = []
    for i in analysis.most_confused(labels, outputs, cfg.saliency_examples):
        found.append({"example": i, "true": int(labels[i]), "predicted": int(outputs[i].argmax()),
                      "confidence": float(outputs[i].max()), "image": pictures[i][..., 0].tolist(),
                      "saliency": analysis.occlusion(predict_images, pictures[i], cfg.occlusion_patch).tolist()})
    return found

