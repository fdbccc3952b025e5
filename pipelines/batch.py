"""The batch scoring pipeline, scheduled beside the training pipeline (`--pipeline batch`):

    1. ingest    the new span (`ingest.source`, its {SPAN} or date resolved as training resolves it), every
                 row into one split: nothing is held out, every row is to be scored
    2. validate  the span against the data the production model was trained on (the registry's lineage):
                 anomalies and drift; a failing gate stops the run before anything is scored
    3. predict   the registry's `predict.alias` version (production) scores every ingested row into
                 `predict.out` (a folder or a bq:// table; empty: the step's own output), keyed by `ingest.key`
    4. summary   always (an exit handler): the run's final state

Ingest is cached as in training (its config and the source's fingerprint); validate and predict always run,
since the production version may have moved.
"""

import dataclasses

from kfp import dsl

from components.common import beam as beam_options, fingerprint
from components.common.config import RunConfig, SplitRatios
from pipelines import ops as ops_lib
from pipelines.training import ingest_sections

WHOLE = SplitRatios(train=1.0, eval=0.0, test=0.0)  # one split: a span to score is not divided


def scoring(cfg: RunConfig) -> RunConfig:
    """The config a batch run goes with: every row of the span in one split (so the others are empty by design,
    not an anomaly), the key kept in the examples even where training drops it, to key the predictions, and
    Dataflow's workers on the component image unless `beam.sdk_container_image` names another (they run
    predict's own code)."""
    ingest = dataclasses.replace(cfg.ingest, split=WHOLE, drop=tuple(c for c in cfg.ingest.drop if c != cfg.ingest.key))
    validation = dataclasses.replace(cfg.validation, fail=tuple(k for k in cfg.validation.fail if k != "empty_split"))
    beam = cfg.beam if cfg.beam.runner != beam_options.DATAFLOW or cfg.beam.sdk_container_image else \
        dataclasses.replace(cfg.beam, sdk_container_image=cfg.pipeline.base_image)
    return dataclasses.replace(cfg, ingest=ingest, validation=validation, beam=beam)


def build(cfg: RunConfig):
    """The pipeline function for this config."""
    cfg = scoring(cfg)
    ops = ops_lib.make(cfg.pipeline.base_image)
    p = cfg.pipeline

    @dsl.pipeline(name=f"tfpipe-{cfg.name}-batch", description=__doc__.split("\n\n")[0])
    def batch(config: str = cfg.to_json(indent=None), ingest_config: str = ingest_sections(cfg),
              source_fingerprint: str = ""):
        summary = ops.summary(config=config).set_caching_options(False)
        with dsl.ExitHandler(summary, name="run"):
            ingested = ops.ingest(config=ingest_config, source_fingerprint=source_fingerprint)
            ingested.set_caching_options(p.cache and fingerprint.of_files(cfg.ingest.source, cfg.ingest.query))
            if p.retries:
                ingested.set_retry(num_retries=p.retries, backoff_duration="30s")
            examples = ingested.outputs["examples"]
            validated = ops.validate(config=config, examples=examples).set_caching_options(False)
            with dsl.If(validated.outputs["Output"] == True, name="validated"):  # noqa: E712 (a KFP condition)
                scored = ops.predict(config=config, examples=examples).set_caching_options(False)
                scored.set_cpu_limit(p.cpu).set_memory_limit(p.memory)

    return batch
