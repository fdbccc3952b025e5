"""A sample of the requests the server answers, as TF Serving's `PredictionLog`s in rotated TFRecord files.

Every API logs (REST and gRPC; predict, classify, regress): a predict as a
`predict_log`, a classify or regress as a `classify_log` / `regress_log`,
each with its request and its answer, and `log_metadata` with the model spec
that answered (name, version, signature), the sampling rate and the time. A
REST request is logged as the equivalent gRPC request, as TF Serving logs
it: a predict body as a `PredictRequest` of its decoded inputs, classify and
regress bodies as their `Example`s. Each request's example keys, when it sends them
(components.serve.example_keys), are logged as its examples carry them.

Logging never delays or fails a request. The request path only draws the
sample and appends the request's own objects to a bounded queue, a few
hundred nanoseconds. The records are encoded (components.serve.wire) after
the answers, a burst at a time, by one callback on the server's event loop,
and a writer thread writes them. Encoding on the loop's own thread, rather
than the writer's, keeps the two threads from taking the interpreter lock
from each other: with the writer encoding, every time the loop gave the lock
up (to poll its sockets) it waited for the writer's switch interval to get
it back (one A/B at 128 REST clients on 2 cores: 0.88x the throughput
without logging when the writer encoded, 0.96x encoded on the loop).
Without a running loop (a log used on its own) the writer encodes them.
When the queue is full the record is dropped and counted
(`tfpipe_serve_request_log_dropped_total{reason="queue_full"}`), as is one
the writer cannot write (`reason="write_failed"`: a full disk, a removed
folder); `tfpipe_serve_request_log_written_total` counts the rest. With
`serve.logging.sampling_rate` 0 there is no logger at all, and the front
ends skip it with one test.

Files: `requests-<UTC time>-<pid>-<n>.tfrecord`, written under a hidden
temporary name and renamed once whole, so a reader never sees a half-written
file: when a file reaches `max_file_bytes`, `PUBLISH_SECONDS` after its first
record, and when the server stops. At most `max_files` files exist, the open
one included; opening a new one removes the oldest. Names sort by age, so
readers (components.monitor) read them in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import tensorflow as tf
from prometheus_client import CollectorRegistry, Counter

from components.common.config import RequestLogConfig
from components.serve import answers, wire

log = logging.getLogger("tfpipe.serve")
QUEUE_LIMIT = 4096  # records waiting for the writer; one more is dropped, never waited for
DRAIN_SECONDS = 0.05  # how often the writer empties the queue
PUBLISH_SECONDS = 60.0  # an open file is renamed into view at most this long after its first record
COMPLAIN_SECONDS = 60.0  # write failures are logged at most this often
PREFIX, SUFFIX = "requests-", ".tfrecord"
RECORD_OVERHEAD = 16  # TFRecord framing: length, its CRC, the data's CRC


class RequestLog:
    """`clock` stamps each record (`log_metadata.timestamp_secs`, by which `tfpipe monitor` assigns windows): the
    wall clock, or one a caller sets to place requests in the windows it means."""

    def __init__(self, cfg: RequestLogConfig, registry: CollectorRegistry, clock: Callable[[], float] = time.time):
        self.rate, self.clock = cfg.sampling_rate, clock
        self.files = LogFiles(cfg.dir, cfg.max_file_bytes, cfg.max_files)
        self.offered: collections.deque = collections.deque()  # (build, args, time): what `offer` queued
        self.pending: collections.deque = collections.deque()  # encoded records, for the writer
        self._encoding = False  # an `_encode_offered` is scheduled on the loop
        self._encoder = threading.Lock()  # the writer's last pass waits for the loop's, so no record is left out
        self._on_loop = False  # offered on a running event loop, which encodes the records
        self.written = Counter("tfpipe_serve_request_log_written", "Requests written to the request log",
                               registry=registry)
        self.dropped = Counter("tfpipe_serve_request_log_dropped", "Sampled requests not written to the request "
                               "log: its queue was full, or writing failed", ["reason"], registry=registry)
        self._queue_full = self.dropped.labels("queue_full")
        self._complained = -COMPLAIN_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="request-log", daemon=True)
        self._thread.start()

    def offer(self, build, *args) -> None:
        """Queues `build(*args)` (a `PredictionLog`'s bytes and its model spec's) for the writer, if sampled and
        there is room."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return
        if len(self.offered) + len(self.pending) >= QUEUE_LIMIT:
            self._queue_full.inc()
            return
        self.offered.append((build, args, self.clock()))
        if not self._encoding:
            try:
                asyncio.get_running_loop().call_soon(self._encode_offered)
            except RuntimeError:  # no loop: the writer encodes it
                return
            self._encoding = self._on_loop = True

    def close(self) -> None:
        """Writes what is queued, publishes the open file and stops the writer."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _drain(self) -> None:
        while not self._stop.wait(DRAIN_SECONDS):
            self._write_pending()
            self._guarded(self.files.publish_if_due)
        self._write_pending()
        self._guarded(self.files.close)

    def _encode_offered(self) -> None:
        """Encodes the queued requests into records for the writer; one that cannot be encoded is dropped."""
        self._encoding = False
        with self._encoder:
            while self.offered:
                build, args, when = self.offered.popleft()
                try:
                    record, answered_by = build(*args)
                except Exception:
                    self._complain("encoding a record failed; it is dropped")
                    self.dropped.labels("write_failed").inc()
                    continue
                self.pending.append(record + wire.metadata(answered_by, self.rate, int(when)))

    def _write_pending(self) -> None:
        if not self._on_loop or self._stop.is_set():
            self._encode_offered()
        written = 0
        while self.pending:
            if self._guarded(self.files.write, self.pending.popleft()):
                written += 1
            else:
                self.dropped.labels("write_failed").inc()
        if written:
            self.written.inc(written)

    def _guarded(self, fn, *args) -> bool:
        """`fn(*args)`; False if it failed, which is logged (at most every COMPLAIN_SECONDS) and never raised:
        the writer outlives any one bad record or disk."""
        try:
            fn(*args)
            return True
        except Exception:
            self.files.abandon()
            self._complain("writing failed; records are dropped until it works again")
            return False

    def _complain(self, what: str) -> None:
        """Logs the exception being handled, at most every COMPLAIN_SECONDS."""
        if time.monotonic() - self._complained >= COMPLAIN_SECONDS:
            self._complained = time.monotonic()
            log.exception("serve: request log %s: %s", self.files.folder, what)


class LogFiles:
    """TFRecord files of about `max_file_bytes`, at most `max_files` of them, each renamed into view once whole."""

    def __init__(self, folder: str, max_file_bytes: int, max_files: int):
        self.folder, self.max_file_bytes, self.max_files = folder.rstrip("/"), max_file_bytes, max_files
        self.writer: tf.io.TFRecordWriter | None = None
        self.path = self.temporary = ""
        self.size, self.opened, self.count = 0, 0.0, 0
        tf.io.gfile.makedirs(self.folder)

    def write(self, record: bytes) -> None:
        if self.writer is None:
            self._open()
        self.writer.write(record)
        self.size += len(record) + RECORD_OVERHEAD
        if self.size >= self.max_file_bytes:
            self.close()

    def _open(self) -> None:
        self._remove_oldest(keep=self.max_files - 1)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.count += 1
        name = f"{PREFIX}{stamp}-{os.getpid()}-{self.count:06d}{SUFFIX}"
        self.path, self.temporary = f"{self.folder}/{name}", f"{self.folder}/.{name}.tmp"
        self.writer = tf.io.TFRecordWriter(self.temporary)
        self.size, self.opened = 0, time.monotonic()

    def publish_if_due(self) -> None:
        if self.writer is not None and time.monotonic() - self.opened >= PUBLISH_SECONDS:
            self.close()

    def close(self) -> None:
        """Closes the open file and renames it into view."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        writer.close()
        tf.io.gfile.rename(self.temporary, self.path, overwrite=True)

    def abandon(self) -> None:
        """After a failure: forget the open file (what it holds is published if it can be), start afresh."""
        try:
            self.close()
        except Exception:  # the file may be what failed; the next record opens a new one
            self.writer = None

    def _remove_oldest(self, keep: int) -> None:
        names = sorted(n for n in tf.io.gfile.listdir(self.folder) if n.startswith(PREFIX) and n.endswith(SUFFIX))
        for name in names[:max(len(names) - keep, 0)]:
            tf.io.gfile.remove(f"{self.folder}/{name}")


# What the front ends queue: builders of one record each, run after the answer on the event loop (or on the
# writer thread, without a loop). Each returns the record without its log_metadata, and the model spec that
# answered, both as wire-format bytes (components.serve.wire).
# `keys`, when the request's example keys came beside its examples (components.serve.example_keys), is the
# key's name and the keys, logged as the examples would have carried them.

Keys = tuple[str, np.ndarray] | None


def predict_arrays(model: tuple[str, int | None, str | None], signature: str, version: int,
                   inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], keys: Keys = None
                   ) -> tuple[bytes, bytes]:
    """A REST predict: its decoded inputs (and keys) as a PredictRequest, its answer as a PredictResponse.
    `model` is (name, version, label) as the client asked; `version` the one that answered."""
    answered = wire.model_spec(model[0], version, None, signature)
    request = wire.field(wire.REQUEST_SPEC, wire.model_spec(*model, signature)) + wire.tensors(wire.INPUTS, inputs)
    response = wire.tensors(wire.OUTPUTS, outputs) + wire.field(wire.RESPONSE_SPEC, answered)
    return wire.log(wire.PREDICT_LOG, request + _key_tensor(keys), response), answered


def classify_examples(model: tuple, signature: str, version: int, examples: list[bytes],
                      outputs: dict[str, np.ndarray], keys: Keys = None) -> tuple[bytes, bytes]:
    """A REST classify: its examples as a ClassificationRequest, its answer as the Classify API's."""
    return _examples_log(wire.CLASSIFY_LOG, model, signature, version, examples,
                         answers.classification_result(outputs), keys)


def regress_examples(model: tuple, signature: str, version: int, examples: list[bytes],
                     outputs: dict[str, np.ndarray], keys: Keys = None) -> tuple[bytes, bytes]:
    return _examples_log(wire.REGRESS_LOG, model, signature, version, examples,
                         answers.regression_result(outputs), keys)


def _examples_log(kind: int, model: tuple, signature: str, version: int, examples: list[bytes], result,
                  keys: Keys):
    answered = wire.model_spec(model[0], version, None, signature)
    if keys is not None:
        examples = [wire.with_feature(e, keys[0], k) for e, k in zip(examples, keys[1], strict=True)]
    listed = b"".join(wire.field(wire.EXAMPLES, e) for e in examples)
    request = wire.field(wire.REQUEST_SPEC, wire.model_spec(*model, signature)) + \
        wire.field(wire.INPUT, wire.field(wire.EXAMPLE_LIST, listed))
    response = wire.field(wire.RESULT, result.SerializeToString()) + wire.field(wire.RESPONSE_SPEC, answered)
    return wire.log(kind, request, response), answered


def predict_protos(request, response, keys: Keys = None) -> tuple[bytes, bytes]:
    """A gRPC predict, logged as it came (with the keys sent in its metadata) and as it was answered."""
    return _protos_log(wire.PREDICT_LOG, request, response, keys)


def classify_protos(request, response, keys: Keys = None) -> tuple[bytes, bytes]:
    return _protos_log(wire.CLASSIFY_LOG, _keyed_examples(request, keys), response)


def regress_protos(request, response, keys: Keys = None) -> tuple[bytes, bytes]:
    return _protos_log(wire.REGRESS_LOG, _keyed_examples(request, keys), response)


def _protos_log(kind: int, request, response, keys: Keys = None) -> tuple[bytes, bytes]:
    return wire.log(kind, request.SerializeToString() + _key_tensor(keys), response.SerializeToString()), \
        response.model_spec.SerializeToString()


def _keyed_examples(request, keys: Keys):
    """A Classify or Regress request whose examples carry the keys as a feature (a copy: the answer is sent)."""
    if keys is None:
        return request
    keyed = type(request)()
    keyed.CopyFrom(request)
    examples = getattr(keyed.input, keyed.input.WhichOneof("kind")).examples
    for example, key in zip(examples, keys[1], strict=True):
        example.features.feature[keys[0]].bytes_list.value[:] = [key.encode()]
    return keyed


def _key_tensor(keys: Keys) -> bytes:
    """The keys as one more input of a PredictRequest (a map entry appended: the last of a name wins)."""
    return b"" if keys is None else wire.tensors(wire.INPUTS, {keys[0]: keys[1]})
