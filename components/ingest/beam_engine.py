"""The Beam engine: the same batches, typing, split and encoding as the local engine, as an Apache Beam pipeline.

    units --Ingest--> part files per unit and split, rejected rows per unit
                 \\--> (typed rows, splits) --Gather (a CombineFn of `Statistics`)--> statistics.pickle
    shards --Concatenate (once every unit is done)--> <split>/data-0000i-of-0000N.tfrecord.gz, rejected.jsonl

A unit is one file of the source and a part of its batches: unit j of k
reads the file with the local engine's reader and processes batches j, j + k,
... with `batch.process` (a BigQuery table: one stream of a read session the
launcher opens, whose streams BigQuery fills with disjoint rows), so that one large file still keeps every worker
busy without its rows crossing a shuffle (on the in-process runner that would
hold the whole input in memory). An image folder is one unit: its reader
decides the image mode and size from the first image, and decoding is its
cost. Each unit writes its own GZIP part files; a shard is its units' parts
one after another, which is itself a valid GZIP TFRecord file. A worker
loads TensorFlow only for gs:// paths (its file system): loading it took each
worker process of the local runner seconds (about 5 s of 13 for 200,000
rows on 2 cores), so examples are encoded with Arrow (`examples`), splits
hashed in numpy (`farmhash`) and parts written with zlib (`tfrecord`),
the same bytes TensorFlow gives. Everything is
written under the step's staging folder (`io.staged_dir`), local or gs://,
so a job that dies leaves nothing under the output's name.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import logging
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.runners.runner import PipelineState

from components.common import beam as beam_options, io
from components.common.beam_workers import SDK_WORKER, Warm
from components.common.config import BeamConfig, IngestConfig
from components.common.errors import TfpipeError
from components.ingest import batch, bigquery, sources, split
from components.ingest.stats import Statistics
from components.ingest.tfrecord import GzipRecordWriter
from components.ingest.writer import shard_name

log = logging.getLogger("tfpipe.ingest")
WORK = "_work"  # under the staging folder: part files and the gathered statistics, removed before publishing
REJECTED = "rejected"
CONSOLE = "https://console.cloud.google.com/dataflow/jobs/{region}/{job_id}?project={project}"


class BeamIngestError(TfpipeError):
    """The Beam pipeline did not finish."""


@dataclass(frozen=True)
class Unit:
    index: int
    source: sources.Source
    part: int
    parts: int
    # A BigQuery source: the read session, and the stream of it this unit reads (all its batches).
    session: bigquery.Session | None = None
    stream: str = ""

    def batches(self, cfg: IngestConfig):
        """The unit's raw batches: its stream's, or its part (every parts-th batch from `part`) of its file's."""
        if self.session is not None:
            yield from bigquery.read_stream(self.session, self.stream, cfg)
            return
        for index, raw in enumerate(sources.read(self.source, cfg)):
            if index % self.parts == self.part:
                yield raw


def units(source: sources.Source, workers: int, cfg: IngestConfig) -> list[Unit]:
    """Every file of the source in parts, enough in all to keep `workers` busy (beam.workers, or this machine's
    cores: on Dataflow, set it to the workers the job should spread one large file over); an image folder whole;
    a BigQuery table as the streams of one read session of up to `workers` streams."""
    if source.format == "bigquery":
        opened = bigquery.session(source, cfg, workers)
        return [Unit(i, source, 0, 1, opened, stream) for i, stream in enumerate(opened.streams)]
    if source.format == "images":
        return [Unit(0, source, 0, 1)]
    parts = math.ceil(workers / len(source.files))
    files = [sources.Source(source.format, (f,), path=source.path) for f in source.files]
    return [Unit(i * parts + j, f, j, parts) for i, f in enumerate(files) for j in range(parts)]


def write(stage: str, source: sources.Source, plan: batch.Plan, stats: Statistics, cfg: IngestConfig,
          beam_cfg: BeamConfig, out: str, warm: Warm | None = None) -> batch.Written:
    """Runs the pipeline into `stage` (on `warm`'s workers, when given) and waits for it; `stats` is the empty
    accumulator every one starts from."""
    folder = os.path.basename(out.rstrip("/"))
    name = beam_options.job_name_for(f"tfpipe-ingest-{folder}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = pipeline(stage, source, plan, stats, cfg, beam_cfg, name, warm).run()
    job_id, job_url = _console(result, beam_cfg)
    if job_id:
        log.info("Dataflow job %s: %s", job_id, job_url)
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise BeamIngestError(f"Beam job {job_id or name} on {beam_cfg.runner} ended {state}, not DONE"
                              + (f"; see {job_url}" if job_url else ""))
    with io.open_binary(f"{stage}/{WORK}/statistics.pickle") as f:
        gathered, rejected = pickle.loads(f.read())
    io.remove_tree(f"{stage}/{WORK}")
    return batch.Written(gathered, rejected, job_id, job_url)


def pipeline(stage: str, source: sources.Source, plan: batch.Plan, stats: Statistics, cfg: IngestConfig,
             beam_cfg: BeamConfig, job_name: str, warm: Warm | None = None) -> beam.Pipeline:
    """The ingest pipeline, built and not yet run."""
    p = beam_options.pipeline(beam_cfg, job_name, warm)
    work = units(source, beam_options.workers(beam_cfg), cfg)
    ingested = (p | "Units" >> beam.Create(work)
                | "Ingest" >> beam.ParDo(Ingest(stage, plan, cfg)).with_outputs(Ingest.ROWS, main="rejected"))
    rejected = ingested.rejected | "CountRejected" >> beam.CombineGlobally(sum)
    (ingested[Ingest.ROWS] | "Gather" >> beam.CombineGlobally(Gather(stats))
     | "Save" >> beam.Map(_save, stage, beam.pvalue.AsSingleton(rejected)))
    shards = [(name, s) for name in split.SPLITS for s in range(cfg.shards)] + [(REJECTED, 0)]
    (p | "Shards" >> beam.Create(shards)
     | "Concatenate" >> beam.ParDo(Concatenate(stage, len(work), cfg.shards), beam.pvalue.AsList(ingested.rejected)))
    return p


class Ingest(beam.DoFn):
    """Reads a unit's batches, writes their examples and rejected rows; yields the rows for statistics."""

    ROWS = "rows"

    def __init__(self, stage: str, plan: batch.Plan, cfg: IngestConfig):
        self.stage, self.plan, self.cfg = stage, plan, cfg

    def setup(self):
        """In a worker process of the local runner, its end skips the interpreter's teardown (`_end_now`)."""
        main = getattr(sys.modules["__main__"], "__spec__", None)
        if main is not None and main.name == SDK_WORKER:
            atexit.register(_end_now)

    def process(self, unit: Unit):
        for name in (*split.SPLITS, REJECTED):
            io.makedirs(f"{self.stage}/{WORK}/{name}")
        files = [GzipRecordWriter(part_path(self.stage, name, unit.index)) for name in split.SPLITS]
        rejected = 0
        try:
            with io.open_write(part_path(self.stage, REJECTED, unit.index)) as bad, \
                    contextlib.closing(unit.batches(self.cfg)) as reader:
                bad.write("")
                for raw in reader:
                    done = batch.process(raw, self.plan)
                    for s, f in enumerate(files):
                        f.write(done.split_records(s))
                    bad.write(done.rejected_lines())
                    rejected += len(done.typed.rejected)
                    yield beam.pvalue.TaggedOutput(self.ROWS, (done.typed.table, done.splits))
        finally:
            for f in files:
                f.close()
        yield rejected


class Gather(beam.CombineFn):
    """The statistics of every batch, in the local engine's mergeable accumulators."""

    def __init__(self, empty: Statistics):
        self.empty = empty

    def create_accumulator(self) -> Statistics:
        return copy.deepcopy(self.empty)

    def add_input(self, stats: Statistics, rows) -> Statistics:
        table, splits = rows
        stats.update(table, splits, split.SPLITS)
        return stats

    def merge_accumulators(self, accumulators) -> Statistics:
        return functools.reduce(Statistics.merge, accumulators)

    def extract_output(self, stats: Statistics) -> Statistics:
        return stats


class Concatenate(beam.DoFn):
    """One output file from the part files of the units it takes, in unit order: shard s of N takes s, s + N, ..."""

    def __init__(self, stage: str, units: int, shards: int):
        self.stage, self.units, self.shards = stage, units, shards

    def process(self, target: tuple[str, int], _done: list[int]):
        name, shard = target
        if name == REJECTED:
            dest, taken = f"{self.stage}/rejected.jsonl", range(self.units)
        else:
            io.makedirs(f"{self.stage}/{name}")
            dest, taken = f"{self.stage}/{name}/{shard_name(shard, self.shards)}", range(shard, self.units, self.shards)
            if not taken:
                GzipRecordWriter(dest).close()
                return
        with io.open_write_binary(dest) as out:
            out.write(b"")  # a file that no part adds to must still exist, and GFile creates it on the first write
            for unit in taken:
                with io.open_binary(part_path(self.stage, name, unit)) as part:
                    while chunk := part.read(1 << 24):
                        out.write(chunk)


def _end_now() -> None:
    """A worker process's last act once the runner has closed it: its outputs are written and closed, and
    the interpreter's teardown (freeing Arrow's, Beam's and gRPC's modules) would take about 0.3 s that the
    runner waits out worker by worker (a tenth of a 200,000-row ingest's time on 2 cores)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def part_path(stage: str, name: str, unit: int) -> str:
    return f"{stage}/{WORK}/{name}/{unit:05d}" + (".jsonl" if name == REJECTED else ".tfrecord.gz")


def _save(stats: Statistics, stage: str, rejected: int) -> None:
    io.write_bytes(f"{stage}/{WORK}/statistics.pickle", pickle.dumps((stats, rejected)))


def _console(result, cfg: BeamConfig) -> tuple[str, str]:
    """The Dataflow job's id and console page; empty on other runners."""
    if cfg.runner != beam_options.DATAFLOW:
        return "", ""
    job_id = result.job_id()
    return job_id, CONSOLE.format(region=cfg.region, job_id=job_id, project=cfg.project)
