"""The labels that arrive after the predictions: one row per example key, read with ingest's source readers.

    labels = read(cfg.labels, schema, task)   # monitor.labels, or `tfpipe monitor --labels SOURCE`
    labels.by_key["20261102-00017"]           # Label("1", known_at=1762214400, where="labels.csv:19")

A source is what `ingest.source` may be (a CSV, Parquet or JSON lines file,
a folder or glob of them, a bq:// table); with {YYYY}-{MM}-{DD} or {SPAN}
every span present is read, since labels accumulate day after day. Each row
holds the example's key (`monitor.labels.key`, by default the training
data's `ingest.key`), its label (`monitor.labels.label`, by default the
training label's name) and optionally the time the label became known
(`monitor.labels.known_at`, by default a column `known_at` when there is one:
epoch seconds, or an ISO 8601 date or time, UTC unless it says otherwise).

A row without a key or a label, or one the reader could not read, is
counted, never joined; a key given twice is counted and its label known
last is the one kept (a correction). A source without the key or label
column, a label that is none of the model's classes (or not a number, for
a regressor) and a time that is not one are errors naming the file, line
and column: quality measured on labels read wrongly would mislead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from components.common.config import IngestConfig, LabelsConfig
from components.common.errors import TfpipeError
from components.common.schema import Schema
from components.common.task import Task
from components.ingest import bigquery, sources, spans
from components.monitor.errors import MonitorError

INTEGER = re.compile(r"-?\d+")
KNOWN_AT = "known_at"  # the column read as the time a label became known when monitor.labels.known_at names none


@dataclass(frozen=True)
class Label:
    value: str  # one of the task's classes, or a regressor's number as text
    known_at: int | None  # epoch seconds; None: the source does not say
    where: str  # file:line, for messages


@dataclass
class Labels:
    """Every label read, by key, and what was read but not kept."""

    source: str
    key: str  # the key column
    by_key: dict[str, Label] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    rows: int = 0
    duplicated: int = 0  # rows whose key an earlier row had
    incomplete: int = 0  # rows without a key or a label
    unreadable: int = 0  # rows the reader could not read (a CSV line of the wrong field count, bad JSON)


@dataclass(frozen=True)
class Columns:
    key: str
    label: str
    known_at: str  # "": the KNOWN_AT column when a file has it


def read(cfg: LabelsConfig, schema: Schema, task: Task, source: str = "") -> Labels:
    """The labels of `source` (default: `cfg.source`), checked against the training schema and task."""
    source = source or cfg.source
    columns = Columns(cfg.key or schema.key, cfg.label or schema.label, cfg.known_at)
    if not columns.key:
        raise MonitorError("monitor.labels.key: the training data has no ingest.key; name the labels' key column")
    reader = IngestConfig(source=source, format=cfg.format, label=columns.label, bigquery=cfg.bigquery)
    labels = Labels(source, columns.key)
    try:
        for span in [source] if bigquery.is_source(reader) else spans.every(source):  # a table's day: its own
            found = sources.resolve(replace(reader, source=span))
            labels.files += found.files
            for batch in sources.read(found, reader):
                labels.unreadable += len(batch.rejected)
                _add(batch, columns, task, labels)
    except TfpipeError as e:
        raise MonitorError(f"labels: {e}") from None
    return labels


def _add(batch: sources.RawBatch, columns: Columns, task: Task, labels: Labels) -> None:
    table = batch.table
    known_at = columns.known_at or (KNOWN_AT if KNOWN_AT in table.column_names else "")
    wanted = [c for c in (columns.key, columns.label, known_at) if c]
    absent = [c for c in wanted if c not in table.column_names]
    if absent:
        raise MonitorError(f"{batch.file}: no column {absent[0]!r}; the labels need the columns {wanted} "
                           f"(monitor.labels.key, .label, .known_at) and it has {table.column_names}")
    values = {c: [_text(v) for v in table.column(c).to_pylist()] for c in wanted}
    for i, line in enumerate(batch.lines.tolist()):
        labels.rows += 1
        key, value = values[columns.key][i], values[columns.label][i]
        if not key or not value:
            labels.incomplete += 1
            continue
        where = f"{batch.file}:{line}"
        label = Label(_label(value, task, where, columns.label),
                      _known_at(values[known_at][i], where, known_at) if known_at else None,
                      where)
        earlier = labels.by_key.get(key)
        if earlier is not None:
            labels.duplicated += 1
            if (earlier.known_at or 0) > (label.known_at or 0):
                continue
        labels.by_key[key] = label


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace").strip() if isinstance(value, bytes) else str(value).strip()


def _label(value: str, task: Task, where: str, column: str) -> str:
    if task.kind == "regression":
        try:
            return str(float(value))
        except ValueError:
            raise MonitorError(f"{where}: column {column!r}: {value!r} is not a number; the model is a "
                               "regressor") from None
    if value not in task.classes and INTEGER.fullmatch(value.removesuffix(".0")):
        value = str(int(value.removesuffix(".0")))  # 1.0 as a Parquet float, for the class "1"
    if value not in task.classes:
        raise MonitorError(f"{where}: column {column!r}: label {value!r} is none of the model's classes "
                           f"{list(task.classes)}")
    return value


def _known_at(value: str, where: str, column: str) -> int | None:
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(f"{where}: column {column!r}: {value!r} is not a time; expected epoch seconds or "
                           "ISO 8601 (2026-11-03, 2026-11-03T08:00:00Z)") from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def key_kind(keys) -> str:
    """"integer" when every key is one, else "text": the labels' keys and the logged ones must agree."""
    return "integer" if all(INTEGER.fullmatch(k) for k in keys) else "text"


def check_key_kind(labels: Labels, logged: list[str]) -> None:
    """A key column of another type than the logged keys (numbers against text ids) is the wrong column or file."""
    if not labels.by_key or not logged:
        return
    mine, theirs = key_kind(labels.by_key), key_kind(logged)
    if mine != theirs:
        first = next(iter(labels.by_key.values()))
        raise MonitorError(f"{first.where.rsplit(':', 1)[0]}: column {labels.key!r}: its keys are {mine} "
                           f"(e.g. {next(iter(labels.by_key))!r}) and the logged predictions' keys are {theirs} "
                           f"(e.g. {logged[0]!r}); expected the column of the examples' ingest.key")
