"""The local engine: batches typed, encoded and written on a small thread pool in this process.

The reader runs in the calling thread; `batch.process` and the writer run on
threads whose work happens in Arrow and TensorFlow C++ code outside the GIL,
with at most a few batches in flight, so memory stays flat whatever the
input size. Statistics are gathered in batch order as each batch completes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from components.common import io
from components.common.config import IngestConfig
from components.common.progress import Progress
from components.ingest import split
from components.ingest.batch import Plan, Processed, Written, process
from components.ingest.sources import RawBatch
from components.ingest.stats import Statistics
from components.ingest.writer import ShardedWriter


def write(stage: str, batches: Iterator[RawBatch], plan: Plan, stats: Statistics, cfg: IngestConfig,
          progress: Progress) -> Written:
    """Writes every batch's examples and rejected rows into `stage`, gathering `stats`."""
    writer = ShardedWriter(stage, split.SPLITS, cfg.shards)
    bad = 0
    with io.open_write(f"{stage}/rejected.jsonl") as rejected, ThreadPoolExecutor(cfg.threads) as pool:

        def work(index: int, batch: RawBatch) -> Processed:
            try:
                done = process(batch, plan)
                writer.write(index, done.splits, done.records)
                return done
            except BaseException:
                writer.fail()
                raise

        def collect(future: Future) -> None:
            nonlocal bad
            done = future.result()
            stats.update(done.typed.table, done.splits, split.SPLITS)
            rejected.write(done.rejected_lines())
            bad += len(done.typed.rejected)
            progress.update(stats.rows + bad, f"{bad:,} rejected")

        in_flight: deque[Future] = deque()
        try:
            for index, batch in enumerate(batches):
                in_flight.append(pool.submit(work, index, batch))
                while len(in_flight) > cfg.threads:
                    collect(in_flight.popleft())
            while in_flight:
                collect(in_flight.popleft())
        except BaseException:
            writer.fail()
            for f in in_flight:
                f.cancel()
            raise
        finally:
            writer.close()
    return Written(stats, bad)
