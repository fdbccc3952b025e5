"""The evaluate step: a trained model and the test split in; metrics, slices and a blessing out.

Outputs under `out/` (staged, renamed into place whole): `metrics.json`
(overall metrics with curves, per-slice metrics, the model and split
evaluated), `blessing.json` (every check with its value, threshold and
verdict), `report.html` (plots and tables) and `logs/` (TensorBoard scalars
and PR curves). The baseline is the registry's (`<home>/registry.json`): its
`production` version, else its newest blessed one; export records a blessed
model there with this evaluation. With no thresholds configured the verdict
is "unchecked" (not blessed), with a warning.

Evaluation streams over the test split and never holds it, so its memory
does not grow with the split: a first pass profiles the sliced features in
bounded memory to settle each feature's slices (`slices.Profile`), a second
runs the model, and the baseline, a batch at a time into fixed-size metric
accumulators, overall and per slice (`evaluation.Evaluation`).
`evaluate.engine` says where the passes run: `local`, in this process
(`stream`), or `beam`, as Beam pipelines under the run's `beam` section
(`beam_engine`); both write the same documents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import keras
import numpy as np
import tensorflow as tf

from components.common import beam as beam_options, io, reader
from components.common.config import BeamConfig, EvaluateConfig
from components.common.evaluation_records import BLESSED, UNCHECKED, Check, MetricsDocument, Overall, Verdict
from components.common.model_loading import load_model, model_file
from components.common.registry import Registry
from components.common.schema import Schema
from components.common.task import Task, task_of
from components.evaluate import gate, metrics as metrics_lib, report, slices, stream
from components.evaluate.evaluation import Evaluation
from components.evaluate.gate import EvaluateError

log = logging.getLogger("tfpipe.evaluate")


@dataclass(frozen=True)
class EvaluateResult:
    out: str
    verdict: Verdict
    metrics: dict[str, float]
    checks: tuple[Check, ...]

    @property
    def blessed(self) -> bool:
        """What the pipeline's If(blessed) branches on: an unchecked model is not blessed."""
        return self.verdict == BLESSED


@dataclass(frozen=True)
class TestSplit:
    """The test split in memory (for whatif, which needs every example): raw features (images left out), label
    indices or values."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    data: tf.data.Dataset  # batches of (features, label), for the model


def run(cfg: EvaluateConfig, model_dir: str, examples: str, out: str, home: str,
        beam: BeamConfig = beam_options.DEFAULT) -> EvaluateResult:
    """Evaluates `model_dir/model.keras` on the test split against the baseline in `home`'s registry;
    `beam` is the run's beam section, which `evaluate.engine: beam` runs the passes with."""
    cfg.validate()
    if cfg.engine == "beam":
        beam.validate()
    schema = Schema.read(examples)
    task = task_of(schema)
    _check_test_split(examples, schema)
    models = {(model_file(model_dir), "model"): load_model(model_dir, schema)}
    baseline_of = Registry(home).baseline()
    if baseline_of is not None:
        what = f"baseline ({baseline_of.why}, version {baseline_of.version}) named in {home}/registry.json"
        models[baseline_of.model, what] = load_model(baseline_of.model, schema, what=what)
    names = tuple(slices.features_to_slice(schema, cfg))
    slicing = ()
    if names:
        profile = _combine(cfg, beam, stream.Reader(examples, schema, task, names),
                           partial(slices.Profile.empty, schema, names), [], "profile")
        slicing = profile.slices(names, cfg.numeric_bins)
    evaluation = _combine(cfg, beam, stream.Reader(examples, schema, task, names, tuple(models)),
                          partial(Evaluation.empty, task, slicing, baseline_of is not None), list(models.values()),
                          "metrics")
    overall = Overall.from_dict(evaluation.overall.result(), "metrics")
    by_slice = evaluation.slices()
    current = overall.scalars()
    baseline = metrics_lib.scalars(evaluation.baseline.result(curves=False)) if evaluation.baseline else None
    verdict, checks = gate.decide(cfg.thresholds, current, baseline)
    if verdict == UNCHECKED:
        log.warning("evaluate: %s", gate.UNCHECKED_NOTE)
    document = MetricsDocument(model_file(model_dir), task.kind, overall, examples, "test", task.classes, by_slice,
                               "" if by_slice else slices.why_none(schema), baseline)
    blessing = gate.blessing(verdict, checks, baseline_of and baseline_of.ref())
    curves = evaluation.overall.histograms() if task.kind == "classification" else {}
    with io.staged_dir(out) as stage:
        io.write_json(f"{stage}/metrics.json", document.to_json())
        io.write_json(f"{stage}/blessing.json", blessing.to_json())
        io.write_text(f"{stage}/report.html", report.html(document, blessing))
        report.tensorboard(f"{stage}/logs", current, curves)
    log.info("evaluate: %s on %d test examples (%s engine); %s; %s", metrics_lib.headline(current), overall.count,
             cfg.engine, verdict.upper(), gate.describe(checks))
    return EvaluateResult(out, verdict, current, checks)


def _combine(cfg: EvaluateConfig, beam: BeamConfig, reader: stream.Reader, empty: Callable[[], stream.S],
             models: list[keras.Model], name: str) -> stream.S:
    """One pass over the test split on the configured engine; the local one uses the models already loaded."""
    if cfg.engine == "beam":
        from components.evaluate import beam_engine

        return beam_engine.combine(reader, empty, cfg.batch_size, beam, f"tfpipe-evaluate-{name}")
    return stream.combine(reader, empty, cfg.batch_size, models)


def _check_test_split(examples: str, schema: Schema) -> None:
    if not schema.splits.get("test"):
        raise EvaluateError(f"{examples}: the test split is empty; ingest with ingest.split.test > 0")


def read_test_split(examples: str, schema: Schema, task: Task, batch_size: int) -> TestSplit:
    _check_test_split(examples, schema)
    data = reader.dataset(examples, "test", schema, task, batch_size, training=False)
    wanted = [f.name for f in schema.inputs if f.type != "image"]
    features = {name: [] for name in wanted}
    labels = []
    for x, y in data:
        for name in wanted:
            features[name].append(column(x[name]))
        labels.append(y.numpy())
    return TestSplit({k: np.concatenate(v) for k, v in features.items()}, np.concatenate(labels), data)


def column(value: tf.Tensor | tf.RaggedTensor) -> np.ndarray:
    """One feature of a batch as a numpy column: one value per example, or for a list one array per example
    (`RaggedTensor.numpy` would make rows of one length a 2-D array)."""
    if not isinstance(value, tf.RaggedTensor):
        return value.numpy().reshape(-1)
    rows = np.empty(value.shape[0], dtype=object)
    for i, row in enumerate(value.to_list()):
        rows[i] = np.asarray(row)
    return rows


def predict(model: keras.Model, data: tf.data.Dataset) -> np.ndarray:
    """The model's outputs for every batch, in order."""
    outputs = stream.forward(model)
    return np.concatenate([outputs(x) for x, _ in data])


def score(task: Task, labels: np.ndarray, outputs: np.ndarray, curves: bool = True) -> dict:
    if task.kind == "classification":
        return metrics_lib.classification(labels, outputs, list(task.classes), curves=curves)
    return metrics_lib.regression(labels, outputs.reshape(-1))
