"""The server's request logs read back, oldest file first, whatever state the folder is in.

Every file not hidden is read as TFRecords of `PredictionLog`s (tfpipe's
server names them by time; TF Serving's own logs are read the same way);
hidden ones are still being written. A folder whose size budget filled has
lost its oldest files, and what remains is simply read. A file cut short (a
copy interrupted, a disk that filled) or not a TFRecord file at all gives the
records before the damage and is reported, with a warning naming it; it
never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import tensorflow as tf
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from components.monitor.errors import MonitorError
from components.monitor.findings import DamagedFile

log = logging.getLogger("tfpipe.monitor")


def files(folder: str) -> list[str]:
    if not tf.io.gfile.isdir(folder):
        raise MonitorError(f"{folder}: no such folder of request logs (serve.logging.dir)")
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(folder) if not n.startswith("."))
    return [f"{folder.rstrip('/')}/{n}" for n in names if not tf.io.gfile.isdir(f"{folder.rstrip('/')}/{n}")]


def records(paths: list[str], damaged: list[DamagedFile]) -> Iterator[prediction_log_pb2.PredictionLog]:
    """Every record of every file; a damaged file's records up to the damage, the file added to `damaged`."""
    for path in paths:
        count = 0
        try:
            for raw in tf.data.TFRecordDataset(path):
                record = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
                count += 1
                yield record
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError, message.DecodeError) as e:
            reason = str(e).splitlines()[0][:200] or type(e).__name__
            log.warning("monitor: %s is damaged after %d records (%s); the rest of it is skipped", path, count, reason)
            damaged.append(DamagedFile(path, count, reason))
