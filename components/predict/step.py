"""The predict step: a registry version scores examples or a source; predictions keyed by `ingest.key` out.

    predict.run(cfg, model.resolve(home, alias="production"), source="data/day-3.csv", out="preds/day-3")

Each prediction row holds the key (the schema's `ingest.key`; without one,
the file and line the row came from), the `predict.keep` columns, and the
prediction: the predicted class and every class's probability (in the
order of the schema's classes, recorded in the files' metadata), or the
predicted value. They are written as Parquet files in a folder, or loaded
into a BigQuery table (components.predict.output); rows of a source that
typing rejects go to `_rejected.jsonl` (file, line, reason naming the
column) and are never scored; `_predict.json` records what was done.

`predict.engine` says where the units of work run (components.predict.units):
`local`, in this process, the model loaded once; or
`beam`, as a Beam pipeline on the `beam` section's runner, the model loaded
once per worker (components.predict.beam_engine). Memory is bounded by the
batch, not the input: rows are read, scored and written a batch at a time.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from components.common import beam as beam_options, io
from components.common.config import BeamConfig, IngestConfig, PredictConfig
from components.common.errors import TfpipeError
from components.common.schema import Schema
from components.common.task import Task, task_of
from components.predict import inputs, model as model_lib, output, units

log = logging.getLogger("tfpipe.predict")
SUMMARY = "_predict.json"
DEFAULT_INGEST = IngestConfig()  # a source's reader options: CSV delimiter, BigQuery project, batch rows


class PredictError(TfpipeError):
    """Nothing to score: no examples, or input that disagrees with the model's schema."""


@dataclass(frozen=True)
class PredictResult:
    """What a predict run did (`_predict.json`)."""

    out: str  # the folder or bq:// table written
    report: str  # the folder of _rejected.jsonl and _predict.json
    model: str  # the version's folder
    version: int
    alias: str
    rows: int  # scored
    rejected: int
    files: int  # Parquet files written
    seconds: float
    engine: str
    load_job: str = ""  # the BigQuery load job, for a bq:// destination

    @property
    def rows_per_second(self) -> float:
        return (self.rows + self.rejected) / max(self.seconds, 1e-9)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, plain: dict) -> PredictResult:
        return cls(**plain)

    @classmethod
    def read(cls, report: str) -> PredictResult:
        return cls.from_json(io.read_json(f"{report.rstrip('/')}/{SUMMARY}"))


def run(cfg: PredictConfig, version: model_lib.Version, out: str, *, examples: str = "", source: str = "",
        report: str = "", ingest: IngestConfig = DEFAULT_INGEST, beam: BeamConfig = beam_options.DEFAULT
        ) -> PredictResult:
    """Scores `examples` (an ingest output folder) or `source` (read with `ingest`'s reader options) with
    `version` into `out`; rejected rows and the summary go to `report` (default: `out`, a folder)."""
    cfg.validate()
    if cfg.engine == "beam":
        beam.validate()
    if bool(examples) == bool(source):
        raise PredictError("expected one of --examples DIR or --source SOURCE")
    bigquery = output.is_bigquery(out)
    destination = output.Destination.parse(out) if bigquery else None
    if bigquery and not report:
        raise PredictError(f"--report: a BigQuery destination ({out}) needs a folder for the rejected rows and "
                           "the summary")
    if report and not bigquery and report != out:
        raise PredictError(f"--report: only a bq:// --out needs one; the folder {out} holds its own "
                           f"{output.REJECTED} and {SUMMARY}")
    report = report or out
    started = time.perf_counter()
    schema = version.schema()
    task = task_of(schema)
    if examples:
        plan, work, typing = _examples(schema, cfg.keep, examples, cfg.engine)
    else:
        plan = inputs.Plan(schema, cfg.keep, source, schema.key, schema)
        work, typing = _source(plan, replace(ingest, source=source), cfg.engine, beam)
    columns = plan.beside_schema(typing.types if typing else None)
    schema_out = pa_schema(columns, model_lib.output_schema(task), version, task)
    with io.staged_dir(report) as stage:
        folder = stage if destination is None else _scratch(cfg, beam)  # a table's files: loaded, then removed
        try:
            job = units.Job(folder, plan, typing, replace(ingest, source=source) if source else ingest, schema_out,
                            cfg.batch_size, cfg.rows_per_file if destination is None else 1 << 62)
            done = _run_units(cfg, beam, version, task, work, job)
            files = [f for d in done for f in d.files] or [output.empty_part(folder, schema_out)]
            for unit in work:
                io.gfile().remove(units.done_path(folder, unit.index))
            output.gather_rejected(folder, len(work))
            load_job = output.load(destination, files) if destination is not None else ""
            if destination is not None:
                io.gfile().copy(f"{folder}/{output.REJECTED}", f"{stage}/{output.REJECTED}", overwrite=True)
        finally:
            if destination is not None:
                io.remove_tree(folder)
        result = PredictResult(out, report, version.path, version.version, version.alias,
                               sum(d.rows for d in done), sum(d.rejected for d in done), len(files),
                               round(time.perf_counter() - started, 3), cfg.engine, load_job)
        io.write_json(f"{stage}/{SUMMARY}", result.to_json())
    log.info("predict: %s rows scored, %s rejected, with %s (%s engine) -> %s", f"{result.rows:,}",
             f"{result.rejected:,}", version.describe(), cfg.engine, out)
    return result


def _scratch(cfg: PredictConfig, beam: BeamConfig) -> str:
    """Where a BigQuery destination's Parquet files wait for the load job: under `beam.temp_location` on
    Dataflow (its workers write there and the job loads them by URI), else a local temporary folder."""
    if beam_options.on_dataflow(cfg.engine, beam):
        folder = f"{beam.temp_location.rstrip('/')}/predict-{time.time_ns()}"
        io.makedirs(folder)
        return folder
    return tempfile.mkdtemp(prefix="tfpipe-predict-")


def pa_schema(beside: pa.Schema, predictions: pa.Schema, version: model_lib.Version, task: Task) -> pa.Schema:
    """The predictions files' columns, with the classes' order and the version in the metadata."""
    metadata = {"tfpipe.model": version.path, "tfpipe.version": str(version.version),
                "tfpipe.classes": json.dumps(list(task.classes))}
    return pa.schema([*beside, *predictions], metadata=metadata)


def _examples(schema: Schema, keep: tuple[str, ...], examples: str, engine: str
              ) -> tuple[inputs.Plan, list[units.Unit], None]:
    """Every split's shards (the local engine: one unit of all; beam: one unit each); the examples' features
    checked against the model's. They are keyed by `ingest.key` where the examples hold it (an ingest that
    dropped it did not write it)."""
    theirs = Schema.read(examples)
    names = {f.name for f in theirs.features}
    missing = [f.name for f in schema.inputs if f.name not in names]
    if missing:
        raise PredictError(f"{examples}/schema.json: no feature(s) {missing}, which the model takes")
    plan = inputs.Plan(schema, keep, examples, schema.key if schema.key in names else "", theirs)
    inputs.check_examples_plan(plan)
    files = sorted(io.gfile().glob(f"{examples.rstrip('/')}/*/*.tfrecord.gz"))
    if not files:
        raise PredictError(f"{examples}: no TFRecord shards; expected <split>/data-*-of-*.tfrecord.gz from ingest")
    if engine != "beam":
        return plan, [units.Unit(0, examples_files=tuple(files))], None
    return plan, [units.Unit(i, examples_files=(f,)) for i, f in enumerate(files)], None


def _source(plan: inputs.Plan, ingest: IngestConfig, engine: str, beam: BeamConfig
            ) -> tuple[list[units.Unit], inputs.SourcePlan]:
    """The source's units (the local engine: the whole source; beam: ingest's parts of it) and its typing, from
    the columns of its first batch."""
    from components.ingest import sources

    source = sources.resolve(ingest)
    reader = sources.read(source, ingest)
    try:
        first = next(reader, None)
    finally:
        reader.close()
    if first is None:
        raise PredictError(f"{ingest.source}: no rows to score")
    typing = inputs.source_plan(plan, first.table.column_names, ingest)
    if engine != "beam":
        return [units.Unit(0, source=source)], typing
    from components.ingest import beam_engine

    parts = beam_engine.units(source, beam_options.workers(beam), ingest)
    return [units.Unit(p.index, part=p) for p in parts], typing


def _run_units(cfg: PredictConfig, beam: BeamConfig, version: model_lib.Version, task: Task,
               work: list[units.Unit], job: units.Job) -> list[units.Done]:
    if cfg.engine == "beam":
        from components.predict import beam_engine

        return beam_engine.run(work, job, version, task, beam)
    scorer = model_lib.Scorer(version, task)
    return [units.score(unit, job, scorer) for unit in work]
