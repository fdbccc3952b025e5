"""The server's request logs read back, oldest file first, whatever state the folder is in.

Every file not hidden is read as TFRecords of `PredictionLog`s (tfpipe's
server names them by time; TF Serving's own logs are read the same way). A
hidden `.<name>.tmp` is a file the server has not closed: still being written,
or left behind when the server was killed (SIGKILL, a lost node). Its whole
records are read all the same, and it is reported as unfinished with the bytes
after its last whole record (the torn tail: a record cut in the middle of its
write) counted; one renamed into view while the folder was read is read under
its final name. A folder whose size budget filled has lost its oldest files,
and what remains is simply read. A file cut short (a copy interrupted, a disk
that filled) or not a TFRecord file at all gives the records before the damage
and is reported, with a warning naming it; it never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import tensorflow as tf
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from components.monitor.errors import MonitorError
from components.monitor.findings import DamagedFile, UnfinishedFile

log = logging.getLogger("tfpipe.monitor")
TEMPORARY = ".tmp"  # components.serve.request_log writes `.<name>.tmp`, then renames it to `<name>`
RECORD_OVERHEAD = 16  # TFRecord framing around each record: its length, the length's CRC, the data's CRC


@dataclass(frozen=True)
class LogFile:
    path: str
    unfinished: bool = False  # a hidden temporary file its writer has not closed

    @property
    def final(self) -> str:
        """The name the writer renames an unfinished file to once it is whole."""
        folder, _, name = self.path.rpartition("/")
        return f"{folder}/{name[1:-len(TEMPORARY)]}"


@dataclass
class Read:
    """What reading the files found besides the records: damaged and unfinished files, and how many records."""

    damaged: list[DamagedFile]
    unfinished: list[UnfinishedFile]
    records: int = 0


def files(folder: str) -> list[LogFile]:
    """The log files, in the order of the names the writer gives them (a file's time, then its number)."""
    if not tf.io.gfile.isdir(folder):
        raise MonitorError(f"{folder}: no such folder of request logs (serve.logging.dir)")
    folder = folder.rstrip("/")
    found = []
    for name in (n.rstrip("/") for n in tf.io.gfile.listdir(folder)):
        unfinished = name.startswith(".") and name.endswith(TEMPORARY) and len(name) > len(TEMPORARY) + 1
        if (unfinished or not name.startswith(".")) and not tf.io.gfile.isdir(f"{folder}/{name}"):
            found.append(LogFile(f"{folder}/{name}", unfinished))
    closed = {f.path for f in found if not f.unfinished}
    # a file renamed while the folder was listed may show under both names: it is read once, whole
    return sorted((f for f in found if not (f.unfinished and f.final in closed)),
                  key=lambda f: f.final if f.unfinished else f.path)


def records(paths: list[LogFile], read: Read) -> Iterator[prediction_log_pb2.PredictionLog]:
    """Every whole record of every file; a damaged file's records up to the damage, the file added to
    `read.damaged`; an unfinished file's up to its torn tail, the file added to `read.unfinished`."""
    for file in paths:
        if file.unfinished and not tf.io.gfile.exists(file.path):
            file = LogFile(file.final)  # closed and renamed since the folder was listed
        path, count, size = file.path, 0, 0
        try:
            for raw in tf.data.TFRecordDataset(path):
                data = raw.numpy()
                record = prediction_log_pb2.PredictionLog.FromString(data)
                count, size = count + 1, size + len(data) + RECORD_OVERHEAD
                read.records += 1
                yield record
        except tf.errors.NotFoundError:
            continue  # removed since the folder was listed: the writer's budget took the oldest file
        except tf.errors.DataLossError as e:
            if not file.unfinished:
                _damaged(path, count, e, read)
        except (tf.errors.OutOfRangeError, message.DecodeError) as e:
            _damaged(path, count, e, read)
        if file.unfinished:
            torn = max(_size(path) - size, 0)
            log.warning("monitor: %s was never closed (its server was killed, or still writes it): %d records "
                        "read, %d bytes after the last whole one", path, count, torn)
            read.unfinished.append(UnfinishedFile(path, count, torn))


def _damaged(path: str, count: int, error: Exception, read: Read) -> None:
    reason = str(error).splitlines()[0][:200] or type(error).__name__
    log.warning("monitor: %s is damaged after %d records (%s); the rest of it is skipped", path, count, reason)
    read.damaged.append(DamagedFile(path, count, reason))


def _size(path: str) -> int:
    try:
        return tf.io.gfile.stat(path).length
    except tf.errors.NotFoundError:  # renamed (closed) or removed (the budget) since it was read
        return 0
