"""Examples shards (GZIP TFRecord files) read a batch of records at a time, in Python.

About four times faster here than tf.data's `TFRecordDataset` (1,000,000
records: 0.31 s against 1.3 s on this machine's 2 cores), whose cost per
record made reading the examples take longer than scoring them. A record is
`[length: uint64][CRC of the length: uint32][data][CRC of the data: uint32]`;
the records' own CRCs are not checked, because the GZIP stream's CRC-32 over
everything in it, checked at the end of each member, catches what they
would. A shard may be several GZIP members one after another (ingest's Beam
engine writes a shard as its units' parts, one after another): each is read
in turn.

The bytes are inflated by Intel's ISA-L (`isal.igzip`): 300 MB from
1,000,000 records in 0.14 s here, against 0.27-0.37 s with Arrow's GZIP
stream and 0.51 s with Python's `zlib`; it lets go of the GIL while it
inflates, so framing and scoring go on meanwhile.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from isal import igzip, isal_zlib

from components.common import io
from components.common.errors import ExamplesError

# decompressed bytes at a time: a record cut at a piece's end is joined to the next piece, a copy of it, and
# pieces that fit the CPU's cache make that copy and the framing faster than larger ones
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
    with io.open_binary(path) as f, igzip.IGzipFile(fileobj=f) as stream:
        while True:
            try:
                piece = stream.read(PIECE)
            except (OSError, EOFError, isal_zlib.error) as e:  # a damaged, cut or other file
                raise ExamplesError(f"{path}: not a whole GZIP TFRecord file ({e}); ingest again") from None
            if not piece:
                return
            yield piece
