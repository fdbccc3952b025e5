"""The beam engine: each pass of the evaluate step as an Apache Beam pipeline over the same accumulators.

The test split's records are read and batched (`evaluate.batch_size`); a
DoFn parses each batch and runs the models on it, loading them once per
worker (`setup`, Keras safe mode); `Accumulate`, a CombineFn around the
local engine's accumulators, adds the batches and merges partial states
across workers (only fixed-size states cross the shuffle). The one merged
state is pickled to `beam.temp_location` (a local temporary folder when that
is empty, as with the local runner) and read back by the step, which then
writes exactly what the local engine would.
"""

from __future__ import annotations

import pickle
import tempfile
import uuid
from collections.abc import Callable

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes

from components.common import beam as beam_options, io, reader as reader_lib
from components.common.config import BeamConfig
from components.evaluate.stream import Reader, S


class _Read(beam.DoFn):
    """Serialized examples, a batch at a time, to `Batch`es."""

    def __init__(self, reader: Reader):
        self._reader = reader

    def setup(self) -> None:
        self._parse = tf.function(reader_lib.parser(self._reader.parsed(), self._reader.task, single_input=False))
        self._batch = self._reader.opened()

    def process(self, records: list[bytes]):
        yield self._batch(*self._parse(tf.constant(records)))


class Accumulate(beam.CombineFn):
    """A pass's state (`Profile` or `Evaluation`) as a CombineFn: `empty` makes a new one, batches are added."""

    def __init__(self, empty: Callable[[], S]):
        self._empty = empty

    def create_accumulator(self) -> S:
        return self._empty()

    def add_input(self, state: S, batch) -> S:
        state.add(batch)
        return state

    def merge_accumulators(self, states) -> S:
        states = iter(states)
        merged = next(states)
        for state in states:
            merged.merge(state)
        return merged

    def extract_output(self, state: S) -> S:
        return state


def combine(reader: Reader, empty: Callable[[], S], batch_size: int, cfg: BeamConfig, job: str) -> S:
    """Runs one pass as a Beam pipeline under `cfg` and returns its merged state."""
    folder = (f"{cfg.temp_location.rstrip('/')}/{job}-{uuid.uuid4().hex}" if cfg.temp_location
              else tempfile.mkdtemp(prefix=f"{job}-"))
    path = f"{folder}/state.pickle"
    try:
        with beam.Pipeline(options=beam_options.of(cfg, job)) as pipeline:
            _ = (pipeline
                 | "Read" >> beam.io.ReadFromTFRecord(f"{reader.examples}/test/*.tfrecord.gz",
                                                      compression_type=CompressionTypes.GZIP)
                 | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
                 | "Predict" >> beam.ParDo(_Read(reader))
                 | "Accumulate" >> beam.CombineGlobally(Accumulate(empty))
                 | "Write" >> beam.Map(lambda state: io.write_bytes(path, pickle.dumps(state))))
        with io.open_binary(path) as f:
            return pickle.loads(f.read())
    finally:
        io.remove_tree(folder)
