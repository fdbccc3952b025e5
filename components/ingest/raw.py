"""What a source reader hands on: raw rows in Arrow batches, and the source they came from.

Kept apart from the readers (`components.ingest.sources`, `components.ingest.bigquery`) so that each
reader imports these and the readers need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class RawBatch:
    file: str
    # 1-based line (text formats), row (Parquet) or item (images) number of each row.
    lines: np.ndarray
    table: pa.Table
    rejected: list[dict] = field(default_factory=list)


def relisted(lists: pa.Array, values: pa.Array) -> pa.ListArray:
    """`values`, one for each value of `lists` in order, in the lists of `lists`: the same lengths, the same
    null rows (`lists` may be a slice, whose offsets do not start at 0)."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, values, mask=lists.is_null())


def rejection(file: str, line: int | None, raw: str, reason: str) -> dict:
    return {"file": file, "line": line, "raw": raw, "reason": reason}


@dataclass(frozen=True)
class Source:
    format: str
    files: tuple[str, ...]
    # The folder holding class sub-folders, for image sources.
    root: str = ""
    # The source as resolved (a {SPAN} or date pattern filled in).
    path: str = ""

    def describe(self) -> dict:
        return {"format": self.format, "files": list(self.files) if self.format != "images" else [],
                "root": self.root, "count": len(self.files), "resolved_source": self.path}
