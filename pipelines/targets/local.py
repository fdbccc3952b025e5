"""The whole pipeline on this machine with kfp.local: each step a subprocess in the project's venv
(a child of a fork server that has imported the steps' modules once), or (`docker=True`) a container
of the component image with no network.

In containers the run folder is mounted at its own path and a local data source read-only at
its own, so paths in the config mean the same inside and out; the config's local paths are made
absolute first. Containers run as the invoking user, so what they write stays theirs.

kfp.local writes every task's outputs under `<runs_root>/tfpipe-<name>-<timestamp>/<task>/`;
that folder is the run folder. Caching (`pipeline.cache`) keeps its entries in
`<runs_root>/.kfp_cache`, so a re-run with the same config and inputs reuses finished steps.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from components.common.config import RunConfig
from components.common.errors import TfpipeError
from pipelines import executor
from pipelines.records import StepFailure
from pipelines.targets import forkserver, local_log
from pipelines.targets.package import Package

# What the steps' processes import: the fork server imports it once for all of them. kfp's executor as each
# step's command loads it (without kfp's client), then the step packages the ops call.
STEP_MODULES = ("kfp.dsl.executor_main", "components.ingest", "components.tune", "components.train",
                "components.evaluate", "components.whatif", "components.export", "components.serve.step",
                "components.monitor", "components.predict")


class PipelineError(TfpipeError):
    """A step of the pipeline failed."""


def run(cfg: RunConfig, docker: bool = False, step: str = "", after: str = "", verbose: bool = False,
        pipeline: str = "training", package: Package | None = None) -> Path:
    """Runs the DAG to the end, or `step` alone on the outputs of the run folder `after`; the new run folder.
    `pipeline` is training or monitoring (whose retraining, if it asks for one, is a `tfpipe run` here);
    `package`, a compiled pipeline file to run instead of the DAG built from `cfg` (its own config).

    Without containers, the steps run in children of a fork server that has imported their modules
    once (pipelines.targets.forkserver). kfp.local's whole output (every task's executor input and
    logs) goes to the run's `pipeline.log`; the console gets the task status lines, or everything with
    `verbose`. A failing step raises PipelineError naming it and its error.
    """
    with contextlib.ExitStack() as stack:
        # kfp.local indents task output by replacing builtins.print while a task runs; tasks running at once (a
        # ParallelFor) restore each other's replacement, which then outlives the run: put the real one back.
        stack.callback(setattr, builtins, "print", builtins.print)
        # Started first: it imports the steps' modules while this process loads kfp and builds the pipeline.
        server = None if docker else stack.enter_context(forkserver.Server(STEP_MODULES))
        from kfp import local

        root = Path(cfg.runs_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        name = f"tfpipe-{cfg.name}-{step or pipeline}" if step or pipeline != "training" else f"tfpipe-{cfg.name}"
        if docker:
            cfg = cfg.with_absolute_paths()
        if package is not None:
            name, (dag, arguments) = package.name, _package(package, cfg, docker)
        else:
            dag, arguments = _pipeline(cfg, step, after, pipeline)
        runner = _docker_runner(cfg, root) if docker else local.SubprocessRunner(use_venv=False)
        local.init(runner=runner, pipeline_root=str(root), enable_caching=cfg.pipeline.cache,
                   cache_root=str(root / ".kfp_cache"), raise_on_error=True)
        if server:
            stack.enter_context(_environment(executor.FORKSERVER, server.ready()))
        before = runs(root, name)
        log_path = root / f".{name}-{os.getpid()}.log"
        output = local_log.Log(log_path, sys.stdout, verbose)
        try:
            with contextlib.redirect_stdout(output), warnings.catch_warnings():
                # Expected here: the project's venv stands in for the image, and resource limits are cluster
                # settings.
                warnings.filterwarnings("ignore", "You may be attemping to run a task that uses custom")
                warnings.filterwarnings("ignore", ".* have no effect in the current local runner")
                dag(**arguments)
        except RuntimeError as e:
            made = runs(root, name) - before
            kept = _keep_log(output, log_path, made)
            raise PipelineError(f"pipeline {name}: {_failure(made, str(e))} (the whole output: {kept})") from None
    [run_dir] = runs(root, name) - before
    _keep_log(output, log_path, {run_dir})
    return run_dir


def _pipeline(cfg: RunConfig, step: str, after: str, pipeline: str) -> tuple:
    """The pipeline function to run, and its arguments."""
    from pipelines import monitoring, summary, training

    if pipeline == "monitoring":
        return monitoring.build(cfg), {}
    if pipeline == "batch":
        from pipelines import batch

        return batch.build(cfg), _fingerprint(cfg)
    if step:
        return training.build_step(cfg, step, summary.outputs_of(Path(after).resolve())), {}
    return training.build(cfg), _fingerprint(cfg)


def _fingerprint(cfg: RunConfig) -> dict[str, str]:
    """The data's fingerprint as a pipeline argument: an ingest step never reuses an earlier run's data from a
    source that changed."""
    from components.common import fingerprint

    return {"source_fingerprint": fingerprint.of_source(cfg.ingest.source, cfg.ingest.query)}


def _package(package: Package, cfg: RunConfig, docker: bool) -> tuple:
    """The compiled file, rehearsed, and its arguments: the data's fingerprint, and in containers the config with
    absolute paths."""
    from pipelines import training

    arguments = _fingerprint(cfg)
    if docker:
        arguments.update(training.parameters(cfg))
    return package.component(), {k: v for k, v in arguments.items() if k in package.parameters}


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` in this process's environment, which kfp.local's step processes inherit."""
    os.environ[name] = value
    try:
        yield
    finally:
        del os.environ[name]


def _failure(made: set[Path], message: str) -> str:
    """Which step failed and why: from the failure the step recorded, else kfp.local's word for which."""
    recorded = next(((run_dir, path) for run_dir in made for path in sorted(run_dir.rglob(StepFailure.FILE))), None)
    if recorded:
        run_dir, path = recorded
        return f"step {str(path.parent.relative_to(run_dir))!r} failed: {StepFailure.read(path)}"
    return f"step {local_log.failed_task(message) or '?'!r} failed: see the log"


def _keep_log(output: local_log.Log, log_path: Path, runs: set[Path]) -> Path:
    """Moves the log into the run folder, where there is one."""
    output.close()
    if len(runs) != 1:
        return log_path
    kept = next(iter(runs)) / "pipeline.log"
    log_path.replace(kept)
    return kept


def runs(root: Path, name: str) -> set[Path]:
    """The run folders of pipeline `name`: kfp.local names them `<name>-<timestamp>` (a training pipeline's
    name never matches its monitoring pipeline's runs, `<name>-monitoring-<timestamp>`)."""
    return {p for p in root.glob(f"{name}-*") if re.fullmatch(rf"{re.escape(name)}-[\d-]+", p.name)}


def _docker_runner(cfg: RunConfig, root: Path):
    """kfp.local's DockerRunner: the steps as the invoking user, no network; besides the runs root (kfp.local
    mounts the pipeline root), the local sources (the data, the labels) are mounted read-only and the serving
    bases (the model home, a deploy base) read-write, each at its own path, so that nothing a step writes stays
    in its container. A run that reads or writes Cloud Storage gets the host's network and the Google clients'
    settings."""
    from docker.types import Mount
    from kfp import local

    from components.common import io as io_lib

    def folder(path: str) -> Path:
        found = Path(path.split("{")[0].split("*")[0]).resolve()
        return found if found.is_dir() else found.parent

    sources = [p for p in (cfg.ingest.source, cfg.monitor.labels.source) if p]
    bases = [p for p in dict.fromkeys((cfg.serving_base, cfg.deploy.local_base)) if p]
    mounts = [Mount(str(folder(path)), str(folder(path)), type="bind", read_only=True)
              for path in sources if not io_lib.is_remote(path)]
    for home in (Path(base).resolve() for base in bases if not io_lib.is_remote(base)):
        if not home.is_relative_to(root):
            home.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(str(home), str(home), type="bind"))
    environment = {"HOME": "/tmp"}
    remote = any(io_lib.is_remote(p) for p in (*sources, *bases))
    if remote:
        google = google_environment()
        environment |= google
        files = sorted({google[name] for name in GOOGLE_FILES if name in google})
        mounts += [Mount(path, path, type="bind", read_only=True) for path in files]
    return local.DockerRunner(network_mode="host" if remote else "none", mounts=mounts,
                              user=f"{os.getuid()}:{os.getgid()}", environment=environment)


# What Google's clients read from the environment: credentials and project, and where Cloud Storage is (an
# emulator's address, a proxy and the certificates it is trusted by; TensorFlow's gs:// goes through libcurl).
GOOGLE_VARIABLES = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST",
                    "GOOGLE_AUTH_TOKEN_FOR_TESTING", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
                    "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
GOOGLE_FILES = ("GOOGLE_APPLICATION_CREDENTIALS", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")  # mounted at their paths


def google_environment() -> dict[str, str]:
    """This process's settings for Google's clients, which a step container on Cloud Storage needs as well."""
    return {name: os.environ[name] for name in GOOGLE_VARIABLES if os.environ.get(name)}
