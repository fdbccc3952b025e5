"""Examples shards (GZIP TFRecord files) read a batch of records at a time, in Python.

About seven times faster here than tf.data's `TFRecordDataset` (1,000,000
records of 300 bytes: 0.6 s against 4.8 s on this machine's 2 busy cores),
whose cost per record made reading the examples take longer than scoring
them. A record is `[length: uint64][CRC of the length: uint32][data][CRC of
the data: uint32]`; the records' own CRCs are not checked, because the GZIP
stream's CRC-32 over everything in it, which zlib checks at the end of each
member, catches what they would. A shard may be several GZIP members one
after another (ingest's Beam engine writes a shard as its units' parts, one
after another): each is read in turn.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from components.common import io
from components.common.errors import ExamplesError

CHUNK = 1 << 22  # compressed bytes read at a time
# decompressed bytes at a time: a record cut at a piece's end is joined to the next piece, a copy of it, and
# pieces that fit the CPU's cache make that copy and framing faster than a chunk's whole output at once
PIECE = 1 << 20
_LENGTH = struct.Struct("<Q")
_FRAME = 16  # the length (8 bytes) and the two CRCs (4 each) around a record's data


def batches(path: str, size: int) -> Iterator[list[bytes]]:
    """The shard's records, `size` at a time (the last batch holds the rest)."""
    records: list[bytes] = []
    pending = b""
    unpack = _LENGTH.unpack_from
    for data in _inflated(path):
        buffer = pending + data if pending else data
        end, position = len(buffer), 0
        while end - position >= _FRAME:
            after = position + _FRAME + unpack(buffer, position)[0]
            if after > end:
                break
            records.append(buffer[position + 12:after - 4])
            position = after
            if len(records) == size:
                yield records
                records = []
        pending = buffer[position:]
    if pending:
        raise ExamplesError(f"{path}: ends inside a record ({len(pending)} bytes left over); ingest again")
    if records:
        yield records


def _inflated(path: str) -> Iterator[bytes]:
    """The decompressed bytes of every GZIP member of the file, `PIECE` bytes at a time."""
    inflate, began = zlib.decompressobj(31), False
    try:
        with io.open_binary(path) as f:
            while chunk := f.read(CHUNK):
                began = True
                while chunk:
                    if inflate.eof:
                        inflate = zlib.decompressobj(31)
                    yield inflate.decompress(chunk, PIECE)
                    chunk = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
        yield inflate.flush()  # what the last piece had no room for
    except zlib.error as e:
        raise ExamplesError(f"{path}: not a GZIP TFRecord file, or a damaged one ({e})") from None
    if began and not inflate.eof:
        raise ExamplesError(f"{path}: the GZIP stream ends early (a file cut short); ingest again")
