"""Sources that name a span or a date, resolved when a run starts, so scheduled runs see new data.

    gs://bucket/events/{YYYY}-{MM}-{DD}/*.csv     the newest day present (or `ingest.source_date`)
    data/exports/span-{SPAN}/                     the highest span number present (TFX's {SPAN})

`resolve` turns the pattern into a concrete source before anything is read;
the ingest step records both in the schema (`config_source`,
`resolved_source`), and a templated source is never served from the cache.
"""

from __future__ import annotations

import datetime
import re

from components.common import io
from components.common.errors import TfpipeError
from components.common.templates import PARTS, is_templated


class SpanError(TfpipeError):
    """A templated source that matches nothing, or a date that is not there."""


def resolve(source: str, date: str = "") -> str:
    """The source with its placeholders filled: `date` (YYYY-MM-DD) if given, else the newest present."""
    if not is_templated(source):
        return source
    if date:
        try:
            day = datetime.date.fromisoformat(date)
        except ValueError:
            raise SpanError(f"ingest.source_date: expected YYYY-MM-DD, got {date!r}") from None
        resolved = source.replace("{YYYY}", f"{day:%Y}").replace("{MM}", f"{day:%m}").replace("{DD}", f"{day:%d}")
        if is_templated(resolved):
            raise SpanError(f"ingest.source {source!r}: a date fills {{YYYY}}-{{MM}}-{{DD}}, not {{SPAN}}")
        return resolved
    return max(_present(source))[1]


def every(source: str) -> list[str]:
    """Every span or date present, oldest first: for data that accumulates (labels), not a training span."""
    if not is_templated(source):
        return [source]
    return [path for _, path in sorted(_present(source))]


def _present(source: str) -> list[tuple[tuple[int, ...], str]]:
    """(the span's numbers, the source with its placeholders filled) for each span or date present."""
    # The part of the pattern up to the last placeholder's folder decides the span; list what exists there.
    head = source[:max(source.rfind(p) for p in PARTS if p in source)]
    head = head[:head.rfind("/") + 1] if "/" in head else ""
    if is_templated(head):
        raise SpanError(f"ingest.source {source!r}: put the placeholders in one folder or file name, "
                        "e.g. events/{YYYY}-{MM}-{DD}/*.csv")
    tail = source[len(head):].split("/", 1)
    folder_pattern = tail[0]
    glob = head + re.sub(r"\{(YYYY|MM|DD|SPAN)\}", "*", folder_pattern)
    regex = re.compile(re.escape(folder_pattern).replace(r"\{YYYY\}", PARTS["{YYYY}"]).replace(
        r"\{MM\}", PARTS["{MM}"]).replace(r"\{DD\}", PARTS["{DD}"]).replace(r"\{SPAN\}", PARTS["{SPAN}"]) + "$")
    candidates = []
    for path in io.gfile().glob(glob):
        match = regex.match(path.rstrip("/")[len(head):])
        if match:
            key = tuple(int(v) for v in match.groupdict().values())
            candidates.append((key, path.rstrip("/") + ("/" + tail[1] if len(tail) > 1 else "")))
    if not candidates:
        raise SpanError(f"ingest.source {source!r}: nothing matches {glob}")
    return candidates
