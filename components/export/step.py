"""The export step: a trained Keras model in; a SavedModel in TF Serving's layout out.

`<home>/<version>/` (home = `<export base>/<model name>`), with an integer
version one above the highest already there, so versions only increase; TF
Serving, KServe and Vertex load the highest. The SavedModel is built in a
staging folder whose name is not a number (TF Serving ignores it), checked,
then renamed into place whole. It holds the signatures of `signatures.py` and
`assets.extra/tf_serving_warmup_requests`: PredictionLogs of a few test
examples that TF Serving replays at load, so that the first real request
does not pay for graph warm-up.

Before the rename the export checks itself: it loads the SavedModel fresh,
runs every signature on test examples and compares each with the Keras
model's predictions (max abs difference 1e-5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from components.common import agreement, io, model_module, reader
from components.common.config import ExportConfig
from components.common.errors import TfpipeError
from components.common.model_loading import load_model
from components.common.registry import Evaluation, Lineage, Registry
from components.common.schema import Schema
from components.common.signatures import OutputName as O, SignatureName as S
from components.common.task import task_of
from components.export.signatures import ServingModule, set_method_names

log = logging.getLogger("tfpipe.export")
CHECK_EXAMPLES = 64
# Kept in each version folder (TF Serving ignores assets.extra): the Keras model, and the training data's schema and
# statistics (schema.json is also what the model server fills a missing input with).
KEPT_MODEL_DIR = "assets.extra/keras"
KEPT_MODEL = f"{KEPT_MODEL_DIR}/model.keras"
TRAINING_STATISTICS = "assets.extra"
STATISTICS_FILES = ("stats.json", "schema.pbtxt", "stats.pb")


class ExportError(TfpipeError):
    """The model cannot be exported, or the export does not answer as the model does."""


@dataclass(frozen=True)
class ExportResult:
    path: str
    version: int
    signatures: tuple[str, ...]
    max_difference: float


def run(cfg: ExportConfig, model_dir: str, examples: str, home: str, evaluation: str = "",
        lineage: Lineage | None = None) -> ExportResult:
    """Exports `model_dir/model.keras` as the next version under `home` and records it in the registry there,
    with the evaluate step's verdict and metrics from `evaluation` (its output folder) when given."""
    cfg.validate()
    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(model_dir, schema)
    serialized = _test_examples(examples)
    module = ServingModule(model, schema, task)
    signatures = module.signatures()
    registry = Registry(home)
    evaluated = Evaluation.read(evaluation) if evaluation else Evaluation()  # its model: the copy kept below
    version = registry.next_version()
    final = f"{home}/{version}"
    with io.staged_dir(final, local=True) as stage:  # on gs://: written and checked here, then uploaded
        tf.saved_model.save(module, stage, signatures=signatures)
        set_method_names(stage)
        _write_warmup(stage, cfg, module, serialized[:cfg.warmup_examples])
        schema.write(f"{stage}/assets.extra")  # what the model server fills a missing input with
        difference = check(stage, module, schema, task, serialized)
        _keep_for_later_users(stage, model_dir, examples)
    lineage = lineage or Lineage()
    module = model_module.record_beside(model_dir)
    registry.register(version, replace(evaluated, model=f"{final}/{KEPT_MODEL}"),
                      replace(lineage, data_span=lineage.data_span or schema.source.get("resolved_source", ""),
                              examples=lineage.examples or f"{final}/{TRAINING_STATISTICS}",
                              model_module=module.lineage if module else ""))
    log.info("export: version %d at %s (signatures %s; max difference from Keras %.2g)", version, final,
             ", ".join(signatures), difference)
    return ExportResult(final, version, tuple(signatures), difference)



def _keep_for_later_users(stage: str, model_dir: str, examples: str) -> None:
    """What later users of the version need, kept with it rather than in the run folder that made it (run folders
    are deleted, and a step's container sees only its own run's): the Keras model and a team's module beside it
    (the next run's evaluation baseline and warm start), and the training data's statistics (what new data and
    served traffic are compared with). TF Serving ignores `assets.extra`."""
    model = model_dir.rstrip("/")
    io.makedirs(f"{stage}/{KEPT_MODEL_DIR}")
    for name in ("model.keras", model_module.RECORD, model_module.SOURCE):
        if io.exists(f"{model}/{name}"):
            io.gfile().copy(f"{model}/{name}", f"{stage}/{KEPT_MODEL_DIR}/{name}", overwrite=True)
    for name in STATISTICS_FILES:
        if io.exists(f"{examples}/{name}"):
            io.gfile().copy(f"{examples}/{name}", f"{stage}/{TRAINING_STATISTICS}/{name}", overwrite=True)


def _test_examples(examples: str) -> list[bytes]:
    files = reader.files_of(examples, "test")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(CHECK_EXAMPLES)
    serialized = [r.numpy() for r in records]
    if not serialized:
        raise ExportError(f"{examples}/test: no examples; export checks itself on the test split")
    return serialized


def _write_warmup(stage: str, cfg: ExportConfig, module: ServingModule, serialized: list[bytes]) -> None:
    if not serialized:
        return
    features = module.served(module.parse(tf.constant(serialized)))
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=cfg.model_name,
                                                                       signature_name=S.SERVING_DEFAULT))
    for name, value in features.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    log_record = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    io.makedirs(f"{stage}/assets.extra")
    with tf.io.TFRecordWriter(f"{stage}/assets.extra/tf_serving_warmup_requests") as writer:
        writer.write(log_record.SerializeToString())


def check(saved_model_dir: str, module: ServingModule, schema: Schema, task, serialized: list[bytes]) -> float:
    """Runs every signature of the SavedModel, loaded fresh, against the Keras model; the largest difference."""
    batch = tf.constant(serialized)
    x, _ = reader.parser(schema, task, module.single_input)(batch)
    expected = np.asarray(module.model(x, training=False), np.float32)
    loaded = tf.saved_model.load(saved_model_dir)
    features = module.served(module.parse(batch))
    answers = {
        S.SERVING_DEFAULT: loaded.signatures[S.SERVING_DEFAULT](**features),
        S.PREDICT_EXAMPLES: loaded.signatures[S.PREDICT_EXAMPLES](inputs=batch),
    }
    method = S.CLASSIFICATION if task.kind == "classification" else S.REGRESSION
    answers[method] = loaded.signatures[method](inputs=batch)
    worst = 0.0
    for name, outputs in answers.items():
        key = {S.CLASSIFICATION: O.SCORES, S.REGRESSION: O.OUTPUTS}.get(name) or (
            O.PROBABILITIES if task.kind == "classification" else O.PREDICTIONS)
        difference = agreement.max_difference(outputs[key].numpy(), expected)
        if not agreement.agrees(difference):
            raise ExportError(f"signature {name!r} answers up to {difference:.3g} away from the Keras model "
                              f"(tolerance {agreement.TOLERANCE}); the export was not published")
        worst = max(worst, difference)
    if task.kind == "classification":
        labels = np.asarray(answers[S.SERVING_DEFAULT][O.CLASSES]).astype(str)
        if list(labels) != [task.classes[i] for i in expected.argmax(axis=1)]:
            raise ExportError("signature 'serving_default' names other classes than the Keras model predicts")
    return worst

