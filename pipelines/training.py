"""The training pipeline, as one KFP DAG:

    1. ingest    source data -> sharded TFRecords, schema, statistics (Dataset, HTML)
       validate  the new data against what the production model was trained on: anomalies and drift; a
                 failing gate stops the run here, before training (Artifact, HTML)
       tune      only with `tune.space`: trials in a ParallelFor (`tune.parallel` at once), the best
                 values collected (dsl.Collected) and passed on to train; an HParams experiment
    2. train     examples (+ the best values) -> Keras model, checkpoints, TensorBoard logs (Model)
    3. evaluate  model + test split -> metrics, slices, report, blessing (Metrics, ClassificationMetrics, HTML)
       whatif    beside evaluate: slices, partial dependence, counterfactuals, thresholds, and the model against
                 the baseline evaluate compares it with, side by side (HTML)
    4. export    only if blessed, after whatif: the next SavedModel version under the export base (Model)
    5. serve     only if blessed: the infra check on that version, then the deploy target
    6. summary   always (an exit handler): the run's final state, and the failing step if any

Ingest gets its config section and the Beam runner's, train its own and the runtime's, the others the whole config (as
JSON). Ingest and train are pure functions of the config
and data, so they are cached when `pipeline.cache` is on; evaluate (it reads the blessing record),
export and serve (they change the serving base) always run. Steps that read or write remote
things retry `pipeline.retries` times.
"""


import dataclasses

from kfp import dsl

from components.common import beam as beam_options, fingerprint
from components.common.config import RunConfig
from pipelines import ops as ops_lib
from pipelines.summary import RunOutputs

# What train reads of the config: its own settings and the launch's; the data's label (checked against the
# examples' schema); where the registry is (warm start from the last blessed model); the search space (the tuner's
# best values are typed by it).
TRAIN_SECTIONS = ("train", "runtime", "pipeline", "name", "ingest", "export", "runs_root", "tune")


def build(cfg: RunConfig, vertex: bool = False):
    """The pipeline function for this config (its name, image, caching and resources).

    For Vertex, train runs as a CustomJob (GCPC's `create_custom_training_job_from_component`) of
    `runtime.workers` replicas, so that multi-worker training gets real machines, each with the
    TF_CONFIG Vertex sets, and its logs can stream to a Vertex TensorBoard.
    """
    ops = ops_lib.make(cfg.pipeline.base_image)
    p = cfg.pipeline
    train_op = _custom_job(ops.train, cfg) if vertex else ops.train

    def configure(task, retries: bool = False, heavy: bool = False, pure: bool = False):
        task.set_caching_options(p.cache and pure)
        if retries and p.retries:
            task.set_retry(num_retries=p.retries, backoff_duration="30s")
        if heavy:
            task.set_cpu_limit(p.cpu).set_memory_limit(p.memory)
            if p.accelerator_type and p.accelerator_count:
                task.set_accelerator_type(p.accelerator_type).set_accelerator_limit(p.accelerator_count)
        return task

    defaults = parameters(cfg)

    @dsl.pipeline(name=f"tfpipe-{cfg.name}", description=__doc__.split("\n\n")[0])
    def training(config: str = defaults["config"], ingest_config: str = defaults["ingest_config"],
                 train_config: str = defaults["train_config"], tune_config: str = defaults["tune_config"],
                 source_fingerprint: str = ""):
        summary = ops.summary(config=config).set_caching_options(False)
        with dsl.ExitHandler(summary, name="run"):
            # A {SPAN} or date source resolves when the run starts, a BigQuery table changes under its name:
            # never reuse an earlier run's data.
            ingested = configure(ops.ingest(config=ingest_config, source_fingerprint=source_fingerprint),
                                 retries=True, pure=fingerprint.of_files(cfg.ingest.source, cfg.ingest.query))
            examples = ingested.outputs["examples"]
            # Never cached: the baseline is whatever the registry's production model was trained on now.
            validated = configure(ops.validate(config=config, examples=examples))
            with dsl.If(validated.outputs["Output"] == True, name="validated"):  # noqa: E712 (a KFP condition)
                hparams = {}
                if cfg.tune.space:
                    plan = configure(ops.plan_trials(config=tune_config), pure=True)
                    with dsl.ParallelFor(plan.outputs["Output"], parallelism=cfg.tune.parallel, name="trials") as trial:
                        tried = configure(ops.run_trial(config=tune_config, examples=examples, trial=trial),
                                          heavy=True, pure=True)
                    hparams = configure(ops.pick_best(config=tune_config, results=dsl.Collected(
                        tried.outputs["Output"]))).outputs["Output"]
                trained = train_op(config=train_config, examples=examples, hparams=hparams)
                # Warm-started from the registry's latest blessed model, training is no longer a function of
                # its config and data alone: never cached then.
                configure(trained, heavy=not vertex, pure=cfg.train.warm_start != "last_blessed")
                evaluated = configure(ops.evaluate(config=config, examples=ingested.outputs["examples"],
                                                   model=trained.outputs["model"]))
                analysed = configure(ops.whatif(config=config, examples=examples, model=trained.outputs["model"]))
                with dsl.If(evaluated.outputs["Output"] == True, name="blessed"):  # noqa: E712 (a KFP condition, not Python)
                    # after whatif, which holds the model against the registry's baseline as evaluate found it:
                    # a version this run exports (and serve may promote) must not become that baseline first
                    exported = configure(ops.export(config=config, examples=ingested.outputs["examples"],
                                                    model=trained.outputs["model"],
                                                    evaluation=evaluated.outputs["evaluation"]).after(analysed))
                    configure(ops.serve(config=config, examples=ingested.outputs["examples"],
                                        version=exported.outputs["Output"]), retries=True)

    return training


def parameters(cfg: RunConfig) -> dict[str, str]:
    """The config, and each step's sections of it, as the pipeline's parameters (their compiled defaults)."""
    return {"config": cfg.to_json(indent=None), "ingest_config": ingest_sections(cfg),
            "train_config": cfg.sections_json(*TRAIN_SECTIONS), "tune_config": cfg.sections_json("tune", "train")}


def ingest_sections(cfg: RunConfig) -> str:
    """What ingest reads of the config: its section and the Beam runner's. Dataflow's workers run the component
    image unless `beam.sdk_container_image` names another."""
    if cfg.beam.runner == beam_options.DATAFLOW and not cfg.beam.sdk_container_image:
        cfg = dataclasses.replace(cfg, beam=dataclasses.replace(cfg.beam, sdk_container_image=cfg.pipeline.base_image))
    return cfg.sections_json("ingest", "beam")


def _custom_job(component, cfg: RunConfig):
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component

    p = cfg.pipeline
    return create_custom_training_job_from_component(
        component, display_name=f"tfpipe-{cfg.name}-train", replica_count=cfg.runtime.workers,
        machine_type=p.machine_type, accelerator_type=p.accelerator_type,
        accelerator_count=p.accelerator_count if p.accelerator_type else 1, tensorboard=p.vertex_tensorboard,
        base_output_directory=p.vertex_output_directory, restart_job_on_worker_restart=True)


def build_step(cfg: RunConfig, step: str, earlier: RunOutputs):
    """A pipeline of one step on an earlier run's outputs, brought in with `dsl.importer`."""
    ops = ops_lib.make(cfg.pipeline.base_image)

    @dsl.pipeline(name=f"tfpipe-{cfg.name}-{step}", description=f"the {step} step alone on {earlier.examples}")
    def one_step(config: str = cfg.to_json(indent=None), train_config: str = cfg.sections_json(*TRAIN_SECTIONS)):
        data = dsl.importer(artifact_uri=str(earlier.examples), artifact_class=dsl.Dataset, reimport=False).output
        if step == "train":
            ops.train(config=train_config, examples=data, hparams={}).set_caching_options(False)
            return
        if step == "serve":
            ops.serve(config=config, examples=data, version=earlier.version or 0).set_caching_options(False)
            return
        trained = dsl.importer(artifact_uri=str(earlier.model), artifact_class=dsl.Model, reimport=False).output
        if step == "export":
            evaluated = dsl.importer(artifact_uri=str(earlier.evaluation), artifact_class=dsl.Artifact,
                                     reimport=False).output
            ops.export(config=config, examples=data, model=trained, evaluation=evaluated).set_caching_options(False)
            return
        getattr(ops, step)(config=config, examples=data, model=trained).set_caching_options(False)

    return one_step
