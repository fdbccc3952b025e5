"""What each op records about its step, in its output artifact's metadata, and reads back for the run summary.

KFP keeps an artifact's metadata as a JSON object, shows it in its UI and,
locally, leaves it in `<run>/<task>/executor_output.json`. The ops write one of
these records there and `pipelines.summary` reads the same type back, so a field
renamed on one side fails on the other (at the first test run, not as a silent
blank in the summary). KFP stores every number as a double; `from_json` gives
each field its declared type back.
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar, Literal, Self

from components.common import io
from components.common.errors import TfpipeError


class RecordError(TfpipeError):
    """A step's record is missing a field: the run folder was written by another version of tfpipe."""


@dataclass(frozen=True)
class Record:
    """One to/from JSON for every record."""

    def to_json(self) -> dict:
        """The record as a JSON object (what KFP keeps as artifact metadata)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, plain: dict) -> Self:
        types = typing.get_type_hints(cls)
        missing = [f.name for f in fields(cls) if f.name not in plain]
        if missing:
            raise RecordError(f"{cls.__name__} has no {', '.join(missing)} (it has {', '.join(plain) or 'nothing'})")
        return cls(**{f.name: _typed(types[f.name], plain[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class StepRecord(Record):
    """What an op records about its step: `TASK` is the op's task name, `ARTIFACT` the output whose metadata
    holds the record."""

    TASK: ClassVar[str]
    ARTIFACT: ClassVar[str]

    seconds: float  # the step's own work: the process's start and its imports are not counted

    @classmethod
    def read(cls, run_dir: Path) -> Self | None:
        """The record a run's task left, or None where the task did not run (skipped, cached or failed)."""
        output = _executor_output(run_dir, cls.TASK)
        if output is None or cls.ARTIFACT not in output.get("artifacts", {}):
            return None
        [artifact] = output["artifacts"][cls.ARTIFACT]["artifacts"]
        return cls.from_json(artifact.get("metadata", {}))


@dataclass(frozen=True)
class IngestRecord(StepRecord):
    TASK: ClassVar[str] = "ingest"
    ARTIFACT: ClassVar[str] = "examples"

    rows: int
    rejected: int
    splits: dict[str, int]  # rows per split: train, eval, test
    job_id: str  # the Dataflow job (ingest.engine beam on the DataflowRunner); "" elsewhere
    job_url: str  # its page in the Cloud console


@dataclass(frozen=True)
class ValidateRecord(StepRecord):
    TASK: ClassVar[str] = "validate"
    ARTIFACT: ClassVar[str] = "anomalies"

    validated: bool  # the gate: False stops the run before training
    headline: str  # the failing features and why, as validate words them
    baseline: str  # the examples validated against ("" on a first run)


@dataclass(frozen=True)
class TrainRecord(StepRecord):
    TASK: ClassVar[str] = "train"
    ARTIFACT: ClassVar[str] = "model"

    metrics: dict[str, float]  # on the eval split, after the last epoch


@dataclass(frozen=True)
class EvaluateRecord(StepRecord):
    TASK: ClassVar[str] = "evaluate"
    ARTIFACT: ClassVar[str] = "evaluation"

    blessed: bool
    verdict: Literal["blessed", "not blessed", "unchecked"]  # unchecked: no thresholds, nothing was checked
    metrics: dict[str, float]  # on the test split; `count` is its number of examples
    headline: str  # the few metrics people look at first, as evaluate words them
    # The folders evaluated: where a cached ingest or train step's outputs really are.
    examples_dir: str
    model_dir: str


@dataclass(frozen=True)
class WhatIfRecord(StepRecord):
    TASK: ClassVar[str] = "whatif"
    ARTIFACT: ClassVar[str] = "analysis"

    compared_with: str = ""  # the baseline shown beside the model ("production, version 3"); "" on a first run


@dataclass(frozen=True)
class ExportRecord(StepRecord):
    TASK: ClassVar[str] = "export"
    ARTIFACT: ClassVar[str] = "saved_model"

    path: str  # the version's folder, <base>/<name>/<version>
    version: int
    signatures: tuple[str, ...]


@dataclass(frozen=True)
class ServeRecord(StepRecord):
    TASK: ClassVar[str] = "serve"
    ARTIFACT: ClassVar[str] = "deployment"

    deployed: bool


@dataclass(frozen=True)
class MonitorRecord(StepRecord):
    TASK: ClassVar[str] = "monitor"
    ARTIFACT: ClassVar[str] = "findings"

    crossed: bool  # a skew or drift threshold, of a feature or of the predictions
    retrain: bool  # and monitor.retrain_on asks for a training run
    requests: int  # logged requests read
    headline: str  # what crossed where, as monitor words it
    training: str  # the examples the requests were compared with


@dataclass(frozen=True)
class RetrainRecord(StepRecord):
    TASK: ClassVar[str] = "retrain"
    ARTIFACT: ClassVar[str] = "started"

    started: str  # the training run started: a local run folder, a KFP run or a Vertex pipeline job
    because: str  # the monitor findings that asked for it


@dataclass(frozen=True)
class PredictRecord(StepRecord):
    TASK: ClassVar[str] = "predict"
    ARTIFACT: ClassVar[str] = "predictions"

    rows: int  # scored
    rejected: int  # rows typing rejected (listed in the report's _rejected.jsonl)
    out: str  # the Parquet folder or bq:// table written
    report: str  # the folder of _rejected.jsonl and _predict.json
    model: str  # the version's folder, <base>/<name>/<version>
    version: int
    alias: str  # the registry alias it was found by (predict.alias)
    files: int  # Parquet files written
    load_job: str  # the BigQuery load job; "" for a folder


def returned(run_dir: Path, task: str):
    """What a run's task returned (its `Output` parameter), or None if the task did not run."""
    output = _executor_output(run_dir, task)
    return output["parameterValues"]["Output"] if output else None


def _executor_output(run_dir: Path, task: str) -> dict | None:
    """kfp.local's record of a task's outputs (KFP's ExecutorOutput as JSON), or None if the task did not run."""
    path = run_dir / task / "executor_output.json"
    return json.loads(path.read_text()) if path.exists() else None


def _typed(kind, value):
    """`value` as the field type `kind` says: KFP's doubles back to ints, lists back to tuples."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is dict:
        return {key: _typed(args[1], item) for key, item in value.items()}
    if origin is tuple:
        return tuple(_typed(args[0], item) for item in value)
    if origin is typing.Literal:
        if value not in args:
            raise RecordError(f"expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    return kind(value)


@dataclass(frozen=True)
class StepFailure(Record):
    """Why a step's process failed, left beside its outputs for `tfpipe run` to report (pipelines.executor)."""

    FILE: ClassVar[str] = "failure.json"

    error: str  # the exception's type, with its module: components.train.errors.TrainError
    message: str

    def __str__(self) -> str:
        return f"{self.error}: {self.message}"

    def write(self, folder: Path) -> None:
        io.write_json(folder / self.FILE, self.to_json())

    @classmethod
    def read(cls, path: Path) -> Self:
        return cls.from_json(json.loads(path.read_text()))
