"""The ingest step: a source in, sharded TFRecords + schema + statistics out.

Batches flow read -> type (conform) -> split -> serialize -> write, on one
of two engines (`ingest.engine`): `local`, threads in this process
(`components.ingest.local`), or `beam`, an Apache Beam pipeline on the
runner the `beam` section names (`components.ingest.beam_engine`). Both run
each batch through `batch.process`; this module does what comes before the
first batch (the source, the sample, the column types) and after the last
(the counts, the schema, the statistics files), the same for both.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from components.common import beam as beam_options, io
from components.common.beam_workers import Warm
from components.common.config import BeamConfig, IngestConfig
from components.common.errors import TfpipeError
from components.common.metadata import DataMetadata
from components.common.progress import Progress
from components.common.schema import Feature, Schema
from components.ingest import batch, conform, local, report, sources, split
from components.ingest.stats import Statistics

BEAM_ENGINE = "components.ingest.beam_engine"  # imported by the Beam engine's workers before their first unit
log = logging.getLogger("tfpipe.ingest")


class IngestError(TfpipeError):
    """The data cannot be ingested: too many bad rows, no good rows, or no label."""


@dataclass(frozen=True)
class IngestResult:
    out: str
    rows: int
    rejected: int
    splits: dict[str, int]
    seconds: float
    # The Dataflow job that ran the step (engine beam on the DataflowRunner) and its console page.
    job_id: str = ""
    job_url: str = ""

    @property
    def rows_per_second(self) -> float:
        return (self.rows + self.rejected) / max(self.seconds, 1e-9)


def run(cfg: IngestConfig, out: str, beam: BeamConfig = beam_options.DEFAULT) -> IngestResult:
    """Ingests `cfg.source` into folder `out`, which appears whole or not at all, on the engine `cfg.engine`.

    The readers are closed here, before any error leaves: a reader left open
    in a suspended generator would be freed whenever the garbage collector
    got to it, perhaps as the interpreter shuts down.
    """
    cfg.validate()
    if cfg.engine == "beam":
        beam.validate()
    start = time.perf_counter()
    source = sources.resolve(cfg)  # a source that is not there is named before any worker starts
    # the local runner's workers import Beam and the engine while this process samples, plans and imports them
    warm = beam_options.warm_workers(beam, (BEAM_ENGINE,)) if cfg.engine == "beam" else None
    with warm or contextlib.nullcontext():
        with contextlib.closing(sources.read(source, cfg)) as reader:
            return _ingest(cfg, beam, source, reader, out, start, warm)


def _ingest(cfg: IngestConfig, beam: BeamConfig, source: sources.Source, batches: Iterator[sources.RawBatch],
            out: str, start: float, warm: Warm | None) -> IngestResult:
    """Plans from the sample, writes on the configured engine, then checks and describes what was written."""
    sample, batches = _peek(batches, cfg.infer_rows)
    types = _column_types(sample, source, cfg)
    if cfg.engine != "beam":  # the Beam engine encodes and writes without it (loaded only for gs:// paths)
        start += _load_tensorflow()
    plan = batch.Plan(types, {n: t for n, t in types.items() if n not in _dropped(cfg, source)}, cfg.label,
                      cfg.key, cfg.split, cfg.max_text_bytes, cfg.list_delimiter)
    typed_sample = batch.typed(sources.RawBatch("", np.arange(1, sample.num_rows + 1), sample), plan).table
    stats = Statistics(plan.kept, cfg.label, cfg.vocab_top_n, typed_sample)
    progress = Progress("ingest", log)
    rejected_path = f"{out.rstrip('/')}.rejected.jsonl"
    with io.staged_dir(out) as stage:
        if cfg.engine == "beam":
            from components.ingest import beam_engine  # Beam takes a second to import; the local engine never needs it

            written = beam_engine.write(stage, source, plan, stats, cfg, beam, out, warm)
        else:
            written = local.write(stage, batches, plan, stats, cfg, progress)
        stats, good, bad = written.stats, written.stats.rows, written.rejected
        try:
            _check_counts(good, bad, cfg, f"{stage}/rejected.jsonl")
        except IngestError:
            io.gfile().copy(f"{stage}/rejected.jsonl", rejected_path, overwrite=True)
            log.error("rejected rows kept in %s", rejected_path)
            raise
        schema = _schema(plan.kept, stats, sample, source, cfg)
        elapsed = time.perf_counter() - start
        summary = {
            "rows": good, "rejected": bad, "splits": {s: stats.split_rows.get(s, 0) for s in split.SPLITS},
            "labels": {s: dict(c) for s, c in stats.split_labels.items()},
            "seconds": round(elapsed, 3), "rows_per_second": round((good + bad) / max(elapsed, 1e-9)),
            "columns": stats.column_dicts(),
        }
        io.write_json(f"{stage}/stats.json", summary)
        io.write_text(f"{stage}/stats.html", report.render(schema, summary))
        schema.write(stage)
        DataMetadata.from_ingest(schema, summary["labels"]).write(stage)  # schema.pbtxt, stats.pb: TFDV's formats
    if io.exists(rejected_path):
        io.gfile().remove(rejected_path)
    progress.done(good + bad, f"{good:,} rows written, {bad:,} rejected -> {out}")
    return IngestResult(out, good, bad, summary["splits"], time.perf_counter() - start, written.job_id,
                        written.job_url)


def _load_tensorflow() -> float:
    """Imports TensorFlow, which the local engine's writer needs, and returns the seconds that took.

    Here rather than at import, so that a wrong source or column is reported
    in about a second instead of after TensorFlow has loaded; the seconds are
    left out of the step's rate, which measures ingesting, as they were when
    TensorFlow loaded at import.
    """
    began = time.perf_counter()
    import tensorflow  # noqa: F401

    return time.perf_counter() - began


def _peek(batches: Iterator[sources.RawBatch], rows: int) -> tuple[pa.Table, Iterator[sources.RawBatch]]:
    """The first `rows` good rows as a sample, and an iterator that still yields every batch."""
    seen: list[sources.RawBatch] = []
    count = 0
    for raw in batches:
        seen.append(raw)
        count += raw.table.num_rows
        if count >= rows:
            break
    tables = [b.table for b in seen if b.table.num_rows]
    if not tables:
        reasons = [r["reason"] for b in seen for r in b.rejected][:3]
        raise IngestError(f"no readable rows in the source{': ' + '; '.join(reasons) if reasons else ''}")
    sample = pa.concat_tables(tables, promote_options="permissive").slice(0, rows)
    return sample, itertools.chain(seen, batches)


def _dropped(cfg: IngestConfig, source: sources.Source) -> set[str]:
    return set(cfg.drop) | ({sources.IMAGE_LABEL_SOURCE} if source.format == "images" else set())


def _column_types(sample: pa.Table, source: sources.Source, cfg: IngestConfig) -> dict[str, str]:
    columns = sample.column_names
    where = source.root or source.files[0]
    if cfg.label not in columns:
        raise IngestError(f"{where}: label column {cfg.label!r} not found; columns are {columns} (set ingest.label)")
    for what, names in (("ingest.key", [cfg.key] if cfg.key else []), ("ingest.drop", cfg.drop),
                        ("ingest.types", list(cfg.types))):
        missing = [n for n in names if n not in columns]
        if missing:
            raise IngestError(f"{what}: column(s) {missing} not in {where}; columns are {columns}")
    if cfg.label in cfg.drop:
        raise IngestError(f"ingest.drop: cannot drop the label column {cfg.label!r}")
    if cfg.types.get(cfg.label, "").endswith(("text", "_list")):
        raise IngestError(f"ingest.types.{cfg.label}: the label is one class or number per row, not "
                          f"{cfg.types[cfg.label]}; use string, int or float")
    overrides = dict(cfg.types)
    image_columns = set()
    if source.format == "images":
        # Class folder names are names, even when they look like numbers.
        overrides.setdefault(cfg.label, "string")
        image_columns.add("image")
    types = conform.infer_types(sample, overrides, image_columns, cfg.max_rejected_fraction, cfg.label,
                                cfg.list_delimiter)
    if cfg.key and types[cfg.key].endswith("_list"):
        raise IngestError(f"ingest.key: column {cfg.key!r} holds lists ({types[cfg.key]}); a key is one value "
                          f"per row")
    if types[cfg.label].endswith("_list"):
        raise IngestError(f"ingest.label: column {cfg.label!r} holds lists ({types[cfg.label]}); a label is one "
                          f"class or number per row")
    return types


def _check_counts(good: int, bad: int, cfg: IngestConfig, rejected_file: str) -> None:
    total = good + bad
    if good == 0:
        raise IngestError(f"no good rows: all {bad:,} rows were rejected; {_first_reasons(rejected_file)}")
    if bad / total > cfg.max_rejected_fraction:
        raise IngestError(
            f"{bad:,} of {total:,} rows rejected ({bad / total:.1%}), more than "
            f"ingest.max_rejected_fraction={cfg.max_rejected_fraction:g}; {_first_reasons(rejected_file)}"
        )


def _first_reasons(rejected_file: str, count: int = 5) -> str:
    lines = []
    with io.gfile().GFile(rejected_file) as f:
        for raw in itertools.islice(f, count):
            row = json.loads(raw)
            lines.append(f"{row['file']}:{row['line']}: {row['reason']}")
    return "first rejected rows:\n  " + "\n  ".join(lines)


def _schema(kept: dict[str, str], stats: Statistics, sample: pa.Table, source, cfg: IngestConfig) -> Schema:
    columns = stats.column_dicts()
    features = []
    for name, ftype in kept.items():
        shape = conform.image_shape(sample.column(name)[0].as_py()) if ftype == "image" else None
        features.append(Feature(name=name, type=ftype, stats=columns[name], image=shape))
    return Schema(
        features=tuple(features),
        label=cfg.label,
        key=cfg.key,
        splits={s: stats.split_rows.get(s, 0) for s in split.SPLITS},
        # The delimiter travels with the schema: scoring a source later splits its cells as these were split.
        source={**source.describe(), "config_source": cfg.source,
                **({"list_delimiter": cfg.list_delimiter} if cfg.list_delimiter else {})},
    )
