"""The whole pipeline on this machine with kfp.local: each step a subprocess in the project's venv,
or (`docker=True`) a container of the component image with no network.

In containers the run folder is mounted at its own path and a local data source read-only at
its own, so paths in the config mean the same inside and out; the config's local paths are made
absolute first. Containers run as the invoking user, so what they write stays theirs.

kfp.local writes every task's outputs under `<runs_root>/tfpipe-<name>-<timestamp>/<task>/`;
that folder is the run folder. Caching (`pipeline.cache`) keeps its entries in
`<runs_root>/.kfp_cache`, so a re-run with the same config and inputs reuses finished steps.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import TfpipeError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# kfp.local's lines that say which task runs and how it ended.
STATUS_LINE = re.compile(r"^[\d:.]+ - \w+ - (Running pipeline|Executing task|Task .* finished|Pipeline .* finished)")
# The last line of a Python traceback: "package.module.SomeError: what went wrong".
ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception): ")


class PipelineError(TfpipeError):
    """A step of the pipeline failed."""


def run(cfg: RunConfig, docker: bool = False, step: str = "", after: str = "", verbose: bool = False) -> Path:
    """Runs the DAG to the end, or `step` alone on the outputs of the run folder `after`; the new run folder.

    kfp.local's whole output (every task's executor input and logs) goes to the run's `pipeline.log`;
    the console gets the task status lines, or everything with `verbose`. A failing step raises
    PipelineError naming it and its error.
    """
    from kfp import local

    from components.ingest import sources
    from pipelines import summary, training

    root = Path(cfg.runs_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    name = f"tfpipe-{cfg.name}-{step}" if step else f"tfpipe-{cfg.name}"
    before = _runs(root, name)
    if docker:
        cfg = absolute_paths(cfg)
    runner = _docker_runner(cfg) if docker else local.SubprocessRunner(use_venv=False)
    local.init(runner=runner, pipeline_root=str(root), enable_caching=cfg.pipeline.cache,
               cache_root=str(root / ".kfp_cache"), raise_on_error=True)
    log_path = root / f".{name}-{os.getpid()}.log"
    output = _Log(log_path, sys.stdout, verbose)
    try:
        with contextlib.redirect_stdout(output), warnings.catch_warnings():
            # Expected here: the project's venv stands in for the image, and resource limits are cluster settings.
            warnings.filterwarnings("ignore", "You may be attemping to run a task that uses custom")
            warnings.filterwarnings("ignore", ".* have no effect in the current local runner")
            if step:
                examples, model, version = summary.inputs_of(Path(after).resolve())
                training.build_step(cfg, step, str(examples), str(model), version or 0)()
            else:
                training.build(cfg)(source_fingerprint=sources.resolve(cfg.ingest).fingerprint())
    except RuntimeError as e:
        message = ANSI.sub("", str(e))
        failed = re.search(r"Inner task failed: '([^']+)'", message)
        cause = next((line.strip() for line in reversed(output.lines) if ERROR_LINE.match(line)), "see the log")
        kept = _keep_log(output, log_path, _runs(root, name) - before)
        raise PipelineError(f"pipeline tfpipe-{cfg.name}: step {failed[1] if failed else '?'!r} failed: "
                            f"{cause} (the whole output: {kept})") from None
    [run_dir] = _runs(root, name) - before
    _keep_log(output, log_path, {run_dir})
    return run_dir


def _keep_log(output: "_Log", log_path: Path, runs: set[Path]) -> Path:
    """Moves the log into the run folder, where there is one."""
    output.close()
    if len(runs) != 1:
        return log_path
    kept = next(iter(runs)) / "pipeline.log"
    log_path.replace(kept)
    return kept


def _runs(root: Path, name: str) -> set[Path]:
    """The run folders of pipeline `name`: kfp.local names them `<name>-<timestamp>`."""
    return {p for p in root.glob(f"{name}-*") if re.fullmatch(rf"{re.escape(name)}-[\d-]+", p.name)}


def absolute_paths(cfg: RunConfig) -> RunConfig:
    """The config with its local paths (runs root, source, export base) made absolute."""
    from components.common import io as io_lib

    def absolute(path: str) -> str:
        return path if not path or io_lib.is_remote(path) else os.path.abspath(path)

    return replace(cfg, runs_root=absolute(cfg.runs_root),
                   ingest=replace(cfg.ingest, source=absolute(cfg.ingest.source)),
                   export=replace(cfg.export, base=absolute(cfg.export.base)))


def _docker_runner(cfg: RunConfig):
    from docker.types import Mount
    from kfp import local

    from components.common import io as io_lib

    mounts = []
    if cfg.ingest.source and not io_lib.is_remote(cfg.ingest.source):
        data = Path(cfg.ingest.source.split("{")[0].split("*")[0]).resolve()
        data = data if data.is_dir() else data.parent
        mounts.append(Mount(str(data), str(data), type="bind", read_only=True))
    return local.DockerRunner(network_mode="none", mounts=mounts, user=f"{os.getuid()}:{os.getgid()}",
                              environment={"HOME": "/tmp"})


class _Log(io.TextIOBase):
    """kfp.local's output: all of it to a file, its task status lines (or all, when verbose) to the console,
    and the last lines kept, to find a failed step's error."""

    def __init__(self, path: Path, console, verbose: bool):
        self.file = open(path, "w")
        self.console, self.verbose = console, verbose
        self.lines: collections.deque[str] = collections.deque(maxlen=400)
        self.partial = ""

    def write(self, text: str) -> int:
        self.file.write(text)
        if self.verbose:
            self.console.write(text)
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        for line in complete:
            self.lines.append(line)
            if not self.verbose and STATUS_LINE.match(ANSI.sub("", line)):
                self.console.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if not self.file.closed:
            self.file.flush()
        self.console.flush()

    def close(self) -> None:
        """Closes the file; the console stays open (it is the process's stdout)."""
        if not self.file.closed:
            self.file.close()
