"""Beam pipeline options from the `beam` section: the one place a step with `engine: beam` gets them.

    with beam.Pipeline(options=beam_options.of(cfg.beam, "tfpipe-digits-ingest")) as p: ...

The default runner is Beam's DirectRunner on this machine's cores in
separate processes (`direct_running_mode=multi_processing`): it needs no
network and no download. The runner named is the one DirectRunner falls back
to (FnApiRunner), because DirectRunner first tries Prism, a binary it fetches
from GitHub on first use. With `runner: DataflowRunner` the options carry the project, region,
temp and staging folders and the component image as the workers' SDK
container, so Dataflow runs the step's own code; `options` are passed
through after these and so can override any of them. A step may start the
local runner's workers before it builds its pipeline (`warm_workers`,
components.common.beam_workers) and build it with them (`pipeline`).
"""

from __future__ import annotations

import os
import re

from components.common.beam_workers import Warm
from components.common.config import BeamConfig

DATAFLOW = "DataflowRunner"
DEFAULT = BeamConfig()  # the beam section's defaults: Beam's multi-process runner on this machine's cores
IN_PROCESS = "apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner"


def on_dataflow(engine: str, cfg: BeamConfig) -> bool:
    """Whether a step with `engine` runs on Dataflow: its workers then read and write the artifacts' URIs."""
    return engine == "beam" and cfg.runner == DATAFLOW


def arguments(cfg: BeamConfig, job_name: str, own_workers: bool = True) -> list[str]:
    """The Beam pipeline arguments for `cfg`, as a command line would give them; without `own_workers`, the local
    runner is not told to start worker processes of its own (it is handed warm ones)."""
    direct = _direct(cfg)
    args = [f"--runner={IN_PROCESS if direct else cfg.runner}", f"--job_name={job_name_for(job_name)}"]
    if direct:
        args.append(f"--direct_num_workers={workers(cfg)}")
        if own_workers:
            args.append("--direct_running_mode=multi_processing")
    if cfg.runner == DATAFLOW:
        args += [f"--project={cfg.project}", f"--region={cfg.region}", f"--temp_location={cfg.temp_location}",
                 f"--staging_location={cfg.staging_location or cfg.temp_location}",
                 # the workers run the component image as it is: nothing to stage or install at start
                 "--experiments=use_runner_v2", "--sdk_location=container"]
        if cfg.sdk_container_image:
            args.append(f"--sdk_container_image={cfg.sdk_container_image}")
        if cfg.service_account:
            args.append(f"--service_account_email={cfg.service_account}")
    return args + list(cfg.options)


def of(cfg: BeamConfig, job_name: str, own_workers: bool = True):
    """`PipelineOptions` for `cfg` (apache_beam imported here: it takes a second and most steps never need it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(arguments(cfg, job_name, own_workers))


def warm_workers(cfg: BeamConfig, modules: tuple[str, ...]) -> Warm | None:
    """The local multi-process runner's workers, started now with `modules` imported; None for any other runner,
    or where `options` choose another running mode or environment."""
    if not _direct(cfg) or any(o.startswith(("--direct_running_mode", "--environment_")) for o in cfg.options):
        return None
    return Warm(workers(cfg), modules)


def pipeline(cfg: BeamConfig, job_name: str, warm: Warm | None = None):
    """A `beam.Pipeline` for `cfg`, on `warm`'s workers when given (their runner then starts no others)."""
    import apache_beam as beam

    return beam.Pipeline(runner=warm.runner() if warm else None, options=of(cfg, job_name, own_workers=warm is None))


def _direct(cfg: BeamConfig) -> bool:
    return cfg.runner in ("DirectRunner", "direct")


def workers(cfg: BeamConfig) -> int:
    """`beam.workers`, or one per core of this machine where it is 0."""
    return cfg.workers or os.cpu_count() or 1


def job_name_for(name: str) -> str:
    """`name` as Dataflow accepts a job name: lower case letters, digits and '-', starting with a letter."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return cleaned if cleaned[:1].isalpha() else f"tfpipe-{cleaned}"
