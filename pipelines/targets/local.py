"""The whole pipeline on this machine with kfp.local: each step a subprocess in the project's venv.

kfp.local writes every task's outputs under `<runs_root>/tfpipe-<name>-<timestamp>/<task>/`;
that folder is the run folder. Caching (`pipeline.cache`) keeps its entries in
`<runs_root>/.kfp_cache`, so a re-run with the same config and inputs reuses finished steps.
"""

from __future__ import annotations

import collections
import contextlib
import io
import re
import sys
import warnings
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import TfpipeError


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback: "package.module.SomeError: what went wrong".
ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception): ")


class PipelineError(TfpipeError):
    """A step of the pipeline failed."""


def run(cfg: RunConfig) -> Path:
    """Runs the DAG to the end; the run folder. A failing step raises PipelineError naming it and its error."""
    from kfp import local

    from components.ingest import sources
    from pipelines import training

    root = Path(cfg.runs_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob(f"tfpipe-{cfg.name}-*"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               enable_caching=cfg.pipeline.cache, cache_root=str(root / ".kfp_cache"), raise_on_error=True)
    output = _Tee(sys.stdout)
    try:
        with contextlib.redirect_stdout(output), warnings.catch_warnings():
            # Expected here: the project's venv stands in for the image, and resource limits are cluster settings.
            warnings.filterwarnings("ignore", "You may be attemping to run a task that uses custom")
            warnings.filterwarnings("ignore", ".* have no effect in the current local runner")
            training.build(cfg)(source_fingerprint=sources.resolve(cfg.ingest).fingerprint())
    except RuntimeError as e:
        message = ANSI.sub("", str(e))
        step = re.search(r"Inner task failed: '([^']+)'", message)
        cause = next((line.strip() for line in reversed(output.lines) if ERROR_LINE.match(line)), "see above")
        raise PipelineError(f"pipeline tfpipe-{cfg.name}: step {step[1] if step else '?'!r} failed: "
                            f"{cause}") from None
    [run_dir] = set(root.glob(f"tfpipe-{cfg.name}-*")) - before
    return run_dir


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps the last lines, to find a failed step's error."""

    def __init__(self, stream):
        self.stream = stream
        self.lines: collections.deque[str] = collections.deque(maxlen=400)

    def write(self, text: str) -> int:
        self.lines.extend(text.splitlines())
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
