"""The evaluate step: a trained model and the test split in; metrics, slices and a blessing out.

Outputs under `out/` (staged, renamed into place whole): `metrics.json`
(overall metrics with curves, per-slice metrics, the model and split
evaluated), `blessing.json` (every check with its value, threshold and
verdict), `report.html` (plots and tables) and `logs/` (TensorBoard scalars
and PR curves). The baseline is the registry's (`<home>/registry.json`): its
`production` version, else its newest blessed one; export records a blessed
model there with this evaluation. With no thresholds configured the verdict
is "unchecked" (not blessed), with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from components.common import io, reader
from components.common.config import EvaluateConfig
from components.common.model_loading import load_model, model_file
from components.common.registry import Registry
from components.common.schema import Schema
from components.common.task import Task, task_of
from components.evaluate import gate, metrics as metrics_lib, report, slices
from components.evaluate.gate import EvaluateError

log = logging.getLogger("tfpipe.evaluate")


@dataclass(frozen=True)
class EvaluateResult:
    out: str
    verdict: str  # gate.BLESSED, gate.NOT_BLESSED or gate.UNCHECKED
    metrics: dict[str, float]
    checks: list[gate.Check]

    @property
    def blessed(self) -> bool:
        """What the pipeline's If(blessed) branches on: an unchecked model is not blessed."""
        return self.verdict == gate.BLESSED


@dataclass(frozen=True)
class TestSplit:
    """The test split in memory: raw features (images left out), label indices or values."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    data: tf.data.Dataset  # batches of (features, label), for the model


def run(cfg: EvaluateConfig, model_dir: str, examples: str, out: str, home: str) -> EvaluateResult:
    """Evaluates `model_dir/model.keras` on the test split against the baseline in `home`'s registry."""
    cfg.validate()
    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(model_dir, schema)
    test = read_test_split(examples, schema, task, cfg.batch_size)
    outputs = predict(model, test.data)
    overall = score(task, test.labels, outputs)
    by_slice = slices.compute(schema, cfg, test.features,
                              lambda mask: metrics_lib.scalars(score(task, test.labels[mask], outputs[mask], False)))
    current = metrics_lib.scalars(overall)
    baseline_of = Registry(home).baseline()
    baseline = None
    if baseline_of is not None:
        what = f"baseline ({baseline_of.why}, version {baseline_of.version}) named in {home}/registry.json"
        baseline_model = load_model(baseline_of.model, schema, what=what)
        baseline = metrics_lib.scalars(score(task, test.labels, predict(baseline_model, test.data), False))
    verdict, checks = gate.decide(cfg.thresholds, current, baseline)
    if verdict == gate.UNCHECKED:
        log.warning("evaluate: %s", gate.UNCHECKED_NOTE)
    model_path = model_file(model_dir)
    document = {"model": model_path, "examples": examples, "split": "test", "task": task.kind,
                "classes": list(task.classes), "overall": overall, "slices": by_slice,
                "slices_note": "" if by_slice else slices.why_none(schema), "baseline": baseline}
    blessing = gate.blessing_json(verdict, checks, baseline_of and baseline_of.to_json())
    with io.staged_dir(out) as stage:
        io.write_json(f"{stage}/metrics.json", document)
        io.write_json(f"{stage}/blessing.json", blessing)
        io.write_text(f"{stage}/report.html", report.html(document, blessing))
        report.tensorboard(f"{stage}/logs", task, current, test.labels, outputs)
    log.info("evaluate: %s on %d test examples; %s; %s", metrics_lib.headline(current), len(test.labels),
             verdict.upper(), gate.describe(checks))
    return EvaluateResult(out, verdict, current, checks)


def read_test_split(examples: str, schema: Schema, task: Task, batch_size: int) -> TestSplit:
    if not schema.splits.get("test"):
        raise EvaluateError(f"{examples}: the test split is empty; ingest with ingest.split.test > 0")
    data = reader.dataset(examples, "test", schema, task, batch_size, training=False)
    wanted = [f.name for f in schema.inputs if f.type != "image"]
    features = {name: [] for name in wanted}
    labels = []
    for x, y in data:
        for name in wanted:
            features[name].append(x[name].numpy().reshape(-1))
        labels.append(y.numpy())
    return TestSplit({k: np.concatenate(v) for k, v in features.items()}, np.concatenate(labels), data)


def predict(model: keras.Model, data: tf.data.Dataset) -> np.ndarray:
    """The model's outputs for every batch, in order; a Sequential model gets its one input tensor."""
    single = isinstance(model, keras.Sequential)
    forward = tf.function(lambda x: model(x, training=False))
    outputs = [forward(next(iter(x.values())) if single else x).numpy() for x, _ in data]
    return np.concatenate(outputs)


def score(task: Task, labels: np.ndarray, outputs: np.ndarray, curves: bool = True) -> dict:
    if task.kind == "classification":
        return metrics_lib.classification(labels, outputs, list(task.classes), curves=curves)
    return metrics_lib.regression(labels, outputs.reshape(-1))
