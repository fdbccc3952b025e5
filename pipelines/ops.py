"""One thin KFP component per step: each body imports `components.<step>` and calls it; no logic here.

KFP ships a lightweight component's source into its container, so every
import is inside the function, and the image (or, locally, the project's
venv) provides `components` and kfp (`install_kfp_package=False`). Every op
takes the run config as JSON: ingest and train only their own sections (so
that their cache keys change only when their settings do), the later steps
the whole config (they need the export base, whose registry names the baseline).
What a step did goes into its output artifact's metadata as the step's record
(pipelines.records), which the run summary reads back.

`make(base_image)` returns the ops for one image; the image comes from config,
never from the environment at import time.
"""

from types import SimpleNamespace

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from pipelines import executor


def ingest(config: str, source_fingerprint: str, examples: Output[Dataset], statistics: Output[HTML]) -> int:
    """Source data -> sharded TFRecords, schema and statistics; returns the row count.

    `source_fingerprint` (the source files' names, sizes and times) is not read here: it is part of
    the cache key, so that new data is ingested again even when the config is unchanged.
    """
    import shutil
    import time

    from components import ingest
    from components.common import beam
    from components.common.config import RunConfig
    from pipelines.records import IngestRecord

    cfg = RunConfig.from_sections_json(config, "ingest")
    started = time.perf_counter()
    dataflow = beam.on_dataflow(cfg.ingest.engine, cfg.beam)  # its workers write the URI
    result = ingest.run(cfg.ingest, examples.uri if dataflow else examples.path, cfg.beam)
    shutil.copy(f"{examples.path}/stats.html", statistics.path)
    examples.metadata.update(IngestRecord(time.perf_counter() - started, result.rows, result.rejected,
                                          result.splits, result.job_id, result.job_url).to_json())
    return result.rows


def validate(config: str, examples: Input[Dataset], anomalies: Output[Artifact], report: Output[HTML]) -> bool:
    """New examples' schema and statistics against those the registry's production model was trained on;
    returns the gate. A first run (no production model yet) passes and says so."""
    import shutil
    import time

    from components import validate
    from components.common.config import RunConfig
    from components.common.registry import Registry
    from pipelines.records import ValidateRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    production = Registry(cfg.model_home).baseline()
    baseline = production.examples if production is not None else ""
    result = validate.run(cfg.validation, examples.path, baseline or None, anomalies.path)
    shutil.copy(f"{anomalies.path}/report.html", report.path)
    anomalies.metadata.update(ValidateRecord(time.perf_counter() - started, result.validated,
                                             result.anomalies.headline(), baseline).to_json())
    return result.validated


def plan_trials(config: str, experiment: Output[Artifact]) -> list[dict]:
    """The tuning trials to run (their ids and values); the HParams experiment goes to `experiment`."""
    from components.common.config import RunConfig
    from components.tune import space, step

    cfg = RunConfig.from_sections_json(config, "tune")
    step.write_experiment(cfg.tune, experiment.path)
    return [{"id": f"trial-{i:03d}", "params": params} for i, params in enumerate(space.trials(cfg.tune))]


def run_trial(config: str, examples: Input[Dataset], trial: dict, logs: Output[Artifact]) -> dict:
    """One tuning trial (a train run with the trial's values); its record, failed or not."""
    from dataclasses import asdict

    from components.common.config import RunConfig
    from components.tune import step

    cfg = RunConfig.from_sections_json(config, "tune")
    done = step.run_trial(cfg.tune, cfg.train, examples.path, logs.path, step.Trial(trial["id"], trial["params"]), [])
    return {k: v for k, v in asdict(done).items() if v is not None}  # KFP values cannot be null


def pick_best(config: str, results: list[dict], table: Output[HTML]) -> dict:
    """The best trial's values, for the train step; the trials table as HTML."""
    from components.common.config import RunConfig
    from components.common.errors import TfpipeError
    from components.tune import step

    cfg = RunConfig.from_sections_json(config, "tune")
    trials = sorted((step.Trial(**{**r, "epochs": int(r.get("epochs", 0))}) for r in results), key=lambda t: t.id)
    best = step.best_trial(cfg.tune, trials)
    with open(table.path, "w") as f:
        f.write(step.html(cfg.tune, trials, best))
    if best is None:
        raise TfpipeError(f"tune: none of {len(trials)} trials completed; their errors are in the trials table")
    return best.params


def train(config: str, examples: Input[Dataset], hparams: dict, model: Output[Model]) -> float:
    """Examples -> a Keras model, checkpoints and TensorBoard logs; returns the eval split's loss.

    `hparams` (train config keys -> values, the tuner's best; empty without tuning) override the config.
    """
    import dataclasses
    import time

    from components.common.config import RunConfig
    from components.train import launcher
    from pipelines.records import TrainRecord

    cfg = RunConfig.from_sections_json(config, "train")
    if hparams:
        from components.tune import space

        cfg = dataclasses.replace(cfg, train=space.apply(cfg.train, space.as_written(cfg.tune, hparams)))
    started = time.perf_counter()
    tfjob = cfg.runtime.launcher == "tfjob"  # the job's pods read and write the artifacts' URIs
    metrics = launcher.train(cfg, examples.uri if tfjob else examples.path, model.uri if tfjob else model.path)
    model.metadata.update(TrainRecord(time.perf_counter() - started, metrics).to_json())
    return float(metrics["loss"])


def evaluate(config: str, examples: Input[Dataset], model: Input[Model], scalars: Output[Metrics],
             classification: Output[ClassificationMetrics], report: Output[HTML],
             evaluation: Output[Artifact]) -> bool:
    """Model + test split -> metrics, slices, report; returns the blessing.

    A single unnamed output: kfp.local resolves `dsl.If` conditions on `Output` but not on named outputs.
    """
    import shutil
    import time

    from components import evaluate
    from components.common import beam
    from components.common.config import RunConfig
    from components.common.evaluation_records import MetricsDocument
    from components.evaluate import artifacts
    from components.evaluate.metrics import headline
    from pipelines.records import EvaluateRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    # On Dataflow the workers read the model and the examples at their URIs; the documents are written here.
    dataflow = beam.on_dataflow(cfg.evaluate.engine, cfg.beam)
    result = evaluate.run(cfg.evaluate, model.uri if dataflow else model.path,
                          examples.uri if dataflow else examples.path, evaluation.path, cfg.model_home, cfg.beam)
    document = MetricsDocument.from_json(open(f"{evaluation.path}/metrics.json").read())
    for name, value in artifacts.scalars(document).items():
        scalars.log_metric(name, value)
    matrix = artifacts.confusion_matrix(document)
    if matrix:
        classification.log_confusion_matrix(*matrix)
        classification.log_roc_curve(*artifacts.roc_curve(document))
    shutil.copy(f"{evaluation.path}/report.html", report.path)
    evaluation.metadata.update(EvaluateRecord(time.perf_counter() - started, result.blessed, result.verdict,
                                              result.metrics,
                                              headline(result.metrics), examples.path, model.path).to_json())
    return result.blessed


def whatif(config: str, examples: Input[Dataset], model: Input[Model], report: Output[HTML],
           analysis: Output[Artifact]) -> None:
    """What-If analysis of the trained model on the test split, side by side with the model evaluate compares it
    with when there is one (the pipeline exports only after this step, so the registry's baseline is still the
    one evaluate read); the report as HTML for the KFP UI."""
    import shutil
    import time

    from components import whatif
    from components.common.config import RunConfig
    from pipelines.records import WhatIfRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    baseline = whatif.registry_baseline(cfg.model_home)
    whatif.run(cfg.whatif, model.path, examples.path, analysis.path, cfg.evaluate, baseline)
    shutil.copy(f"{analysis.path}/report.html", report.path)
    analysis.metadata.update(WhatIfRecord(time.perf_counter() - started,
                                          baseline.name if baseline else "").to_json())


def export(config: str, examples: Input[Dataset], model: Input[Model], evaluation: Input[Artifact],
           saved_model: Output[Model]) -> int:
    """Model -> the next SavedModel version under the export base (returned), registered with its evaluation;
    the artifact records where."""
    import time

    from components import export
    from components.common.config import RunConfig
    from pipelines.records import ExportRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    result = export.run(cfg.export, model.path, examples.path, cfg.model_home, evaluation.path)
    saved_model.metadata.update(ExportRecord(time.perf_counter() - started, result.path, result.version,
                                             result.signatures).to_json())
    with open(saved_model.path, "w") as f:
        f.write(result.path + "\n")
    return result.version


def serve(config: str, examples: Input[Dataset], version: int, deployment: Output[Artifact]) -> bool:
    """The infra check on the exported version, then the configured deploy target."""
    import time

    from components.common.config import RunConfig
    from components.serve import step
    from pipelines.records import ServeRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    deployed = step.run(cfg.deploy, cfg.model_home, version, examples.path, deployment.path,
                        request_logging=cfg.serve.logging, promote=cfg.serve.promote, monitoring=cfg.monitor,
                        examples_uri=examples.uri)
    deployment.metadata.update(ServeRecord(time.perf_counter() - started, deployed.deployed).to_json())
    return deployed.deployed


def monitor(config: str, findings: Output[Artifact], report: Output[HTML]) -> bool:
    """The served model's request logs (the last complete windows) against the data it was trained on; returns
    whether `monitor.retrain_on` asks for a training run."""
    import shutil
    import time

    from components import monitor as monitor_step
    from components.common.config import RunConfig
    from pipelines.records import MonitorRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    result = monitor_step.scheduled(cfg, findings.path, time.time())
    shutil.copy(f"{findings.path}/report.html", report.path)
    found = result.findings
    findings.metadata.update(MonitorRecord(time.perf_counter() - started, found.crossed, found.retrain,
                                           found.requests, found.headline(), found.training).to_json())
    return result.retrain


def predict(config: str, examples: Input[Dataset], predictions: Output[Dataset]) -> int:
    """The registry's `predict.alias` version scores every ingested row into `predict.out` (empty: this step's
    output); the rejected rows and what was done go to the output; returns the rows scored."""
    import time

    from components import predict as predict_step
    from components.common import beam
    from components.common.config import RunConfig
    from components.predict import model, output
    from pipelines.records import PredictRecord

    cfg = RunConfig.from_json(config)
    started = time.perf_counter()
    version = model.resolve(cfg.model_home, alias=cfg.predict.alias)
    dataflow = beam.on_dataflow(cfg.predict.engine, cfg.beam)  # its workers read and write the URIs
    out = cfg.predict.out or (predictions.uri if dataflow else predictions.path)
    bigquery = output.is_bigquery(out)
    result = predict_step.run(cfg.predict, version, out, examples=examples.uri if dataflow else examples.path,
                              report=predictions.path if bigquery else "", ingest=cfg.ingest, beam=cfg.beam)
    predictions.metadata.update(PredictRecord(time.perf_counter() - started, result.rows, result.rejected, out,
                                              result.report, version.path, version.version, version.alias,
                                              result.files, result.load_job).to_json())
    return result.rows


def retrain(config: str, target: str, findings: Input[Artifact], started: Output[Artifact]) -> str:
    """Starts the training pipeline on `target` (a Target as JSON; local: a `tfpipe run`), because `findings`
    crossed the threshold `monitor.retrain_on` names; returns what it started."""
    import time

    from components.common.config import RunConfig
    from pipelines import trigger
    from pipelines.records import RetrainRecord
    from pipelines.targets.cluster import Target

    cfg = RunConfig.from_json(config)
    began = time.perf_counter()
    made = trigger.start_training(cfg, Target.from_json(target), started.path)
    started.metadata.update(RetrainRecord(time.perf_counter() - began, made, findings.path).to_json())
    return made


def summary(config: str, status: dsl.PipelineTaskFinalStatus, report: Output[Markdown]) -> str:
    """Runs whatever happened before it (an exit handler): the run's final state as Markdown the KFP UI shows,
    and the error of the step that failed, if one did."""
    from components.common.config import RunConfig

    name = RunConfig.from_json(config).name
    lines = [f"# tfpipe-{name}", "", f"- state: **{status.state}**", f"- job: `{status.pipeline_job_resource_name}`"]
    if status.error_message:
        lines += [f"- error (code {status.error_code}):", "", "```", status.error_message, "```"]
    with open(report.path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return status.state


def make(base_image: str) -> SimpleNamespace:
    """The ops as KFP components on `base_image`."""
    def component(function):
        return executor.run_through_this(dsl.component(function, base_image=base_image, install_kfp_package=False))

    return SimpleNamespace(**{f.__name__: component(f) for f in (
        ingest, validate, plan_trials, run_trial, pick_best, train, evaluate, whatif, export, serve, monitor, retrain,
        predict, summary)})
