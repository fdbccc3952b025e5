"""The beam engine: the step's units of work as a Beam pipeline, each scored by `units.score` on a worker.

    units --Score (the model loaded once per worker, in setup)--> part files, rejected rows, _unit-<n>.json

The units are examples shards or ingest's own parts of a source (a file's
every k-th batch, a BigQuery read stream), so one large file still keeps
every worker busy and no row crosses a shuffle; each unit writes its own
files under the step's folder (local or gs://), which the step then gathers
exactly as after the local engine.
"""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.runners.runner import PipelineState

from components.common import beam as beam_options, io
from components.common.config import BeamConfig
from components.common.errors import TfpipeError
from components.common.task import Task
from components.predict import units
from components.predict.model import Scorer, Version


class BeamPredictError(TfpipeError):
    """The Beam pipeline did not finish."""


class Score(beam.DoFn):
    def __init__(self, job: units.Job, version: Version, task: Task):
        self.job, self.version, self.task = job, version, task

    def setup(self) -> None:
        self.scorer = Scorer(self.version, self.task)
        self.scorer.load()

    def process(self, unit: units.Unit):
        yield units.score(unit, self.job, self.scorer)


def run(work: list[units.Unit], job: units.Job, version: Version, task: Task, cfg: BeamConfig) -> list[units.Done]:
    """Runs every unit on `cfg`'s runner and waits; what each unit wrote, in unit order."""
    name = beam_options.job_name_for(f"tfpipe-predict-{time.strftime('%Y%m%d-%H%M%S')}")
    pipeline = beam.Pipeline(options=beam_options.of(cfg, name))
    _ = pipeline | "Units" >> beam.Create(work) | "Score" >> beam.ParDo(Score(job, version, task))
    state = pipeline.run().wait_until_finish()
    if state != PipelineState.DONE:
        raise BeamPredictError(f"Beam job {name} on {cfg.runner} ended {state}, not DONE")
    return [units.Done.from_json(io.read_json(units.done_path(job.folder, unit.index))) for unit in work]
