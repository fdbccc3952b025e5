"""GZIP TFRecord files written without TensorFlow, for the processes that should not spend seconds loading it.

A record is framed as TensorFlow frames it: its length (8 bytes, little
endian), the masked CRC-32C of those 8 bytes, the record, the masked CRC-32C
of the record. The CRC is google-crc32c's (Beam's TFRecord IO uses it too);
its record writer is private to Beam and writes a record at a time, where
here a batch's records are framed, joined and compressed in one go. The file
is compressed as TensorFlow's GZIP option compresses (zlib's default level,
memory level 9), and any reader of GZIP TFRecords reads it, `tf.data`
included.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterable

import google_crc32c

from components.common import io


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=4096)
def _header(length: int) -> bytes:
    """The 12 bytes before a record of `length` bytes (records of a batch often share lengths)."""
    size = struct.pack("<Q", length)
    return size + _masked_crc(size)


def framed(records: Iterable[bytes]) -> bytes:
    """`records` one after another in TFRecord framing."""
    parts = []
    for record in records:
        parts += (_header(len(record)), record, _masked_crc(record))
    return b"".join(parts)


class GzipRecordWriter:
    """One GZIP TFRecord file, local or remote (gs:// through `tf.io.gfile`, loaded only then)."""

    def __init__(self, path: str):
        self._file = io.open_write_binary(path)
        self._zip = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)

    def write(self, records: Iterable[bytes]) -> None:
        self._file.write(self._zip.compress(framed(records)))

    def close(self) -> None:
        """Ends the GZIP stream and the file (a file with no records is still a valid, empty one)."""
        self._file.write(self._zip.flush())
        self._file.close()
