"""A digest of the files a data source names (their paths, sizes and modification times).

The pipeline takes it as a parameter of the ingest step so that the step's
cache key changes when the data does, even under an unchanged config. `tfpipe
run` computes it before the run starts, in a process that does not load
TensorFlow, so local paths are listed with the standard library; only a remote
source (gs://...) needs tf.io.gfile. It covers every file under the source (a
file, a folder, or a glob pattern of either), not only those ingest reads: a
digest that changes more often than needed costs one more ingest, one that
changes too seldom would serve stale examples.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterator

from components.common import io, templates

PATTERN = "*?["


def of_files(source: str, query: str = "") -> bool:
    """Whether ingest reads files whose digest says when their data changed: not for a templated source (it
    names other files from run to run), a BigQuery table (bq://) or query (rows change under the same name).
    Ingest is cached only when it does."""
    return bool(source) and not query and not source.startswith("bq://") and not templates.is_templated(source)


def of_source(source: str, query: str = "") -> str:
    """The digest of the files under `source`; empty where ingest reads no such files (`of_files`)."""
    if not of_files(source, query):
        return ""
    digest = hashlib.sha256()
    for path, size, mtime_ns in _remote_files(source) if io.is_remote(source) else _local_files(source):
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _local_files(source: str) -> Iterator[tuple[str, int, int]]:
    for match in sorted(glob.glob(source)) if any(ch in source for ch in PATTERN) else [source]:
        if os.path.isdir(match):
            paths = sorted(os.path.join(root, name) for root, _, names in os.walk(match) for name in names)
        else:
            paths = [match] if os.path.exists(match) else []
        for path in paths:
            stat = os.stat(path)
            yield path, stat.st_size, stat.st_mtime_ns


def _remote_files(source: str) -> Iterator[tuple[str, int, int]]:
    g = io.gfile()
    for match in sorted(g.glob(source)) if any(ch in source for ch in PATTERN) else [source]:
        if g.isdir(match):
            paths = sorted(f"{root.rstrip('/')}/{name}" for root, _, names in g.walk(match) for name in names)
        else:
            paths = [match] if g.exists(match) else []
        for path in paths:
            stat = g.stat(path)
            yield path, stat.length, stat.mtime_nsec
