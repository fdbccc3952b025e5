"""Source templates: the placeholders a source path may hold, for sources that name a span or a date.

    gs://bucket/events/{YYYY}-{MM}-{DD}/*.csv     a day's folder
    data/exports/span-{SPAN}/                     a numbered span

Plain string logic, apart from the ingest step that resolves a template against
what exists (components.ingest.spans): the pipeline asks whether a source is
templated when it is built, and building a pipeline must not load TensorFlow.
"""

from __future__ import annotations

# Each placeholder and the regular expression group that matches what fills it.
PARTS = {"{YYYY}": r"(?P<year>\d{4})", "{MM}": r"(?P<month>\d{2})", "{DD}": r"(?P<day>\d{2})",
         "{SPAN}": r"(?P<span>\d+)"}


def is_templated(source: str) -> bool:
    """Whether `source` holds a placeholder, so that what it names changes from run to run."""
    return any(part in source for part in PARTS)
