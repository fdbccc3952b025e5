"""The pipeline's serve step: the infra check on an exported version, then the deploy target.

Writes `<out>/infra_blessing.json` (components.serve.infra) and
`<out>/deploy.json` (a `Deployment`: what was deployed where, or why nothing was).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from components.common import io
from components.common.config import DeployConfig, MonitorConfig, RequestLogConfig
from components.common.registry import CANDIDATE, PRODUCTION, Registry
from components.common.schema import Schema
from components.serve import deploy, infra, vertex_monitoring
from components.serve.deployment import Deployment

log = logging.getLogger("tfpipe.serve")
UNMONITORED = MonitorConfig()  # monitor's defaults: no Vertex monitoring job


def run(cfg: DeployConfig, home: str, version: int, examples: str, out: str,
        request_logging: RequestLogConfig = deploy.NO_LOGGING, promote: str = "manual",
        monitoring: MonitorConfig = UNMONITORED, examples_uri: str = "") -> Deployment:
    """`request_logging` (serve.logging) says whether a cluster deployment logs its requests, and where.
    With `monitoring.vertex_job`, a Vertex endpoint gets a Model Monitoring job against the training data
    (`examples_uri`: the examples' gs:// URI where `examples` is a mounted path; default `examples`).

    A version that passes the infra check and deploys becomes the registry's `candidate`; with
    `promote == "auto"` (serve.promote) also its `production`, which a server following the registry's
    labels file then serves without a restart. A version that fails stays where it was: nothing moves.
    """
    cfg.validate()
    request_logging.validate()
    name = Path(home).name
    if cfg.infra_check:
        checked = infra.check(home, version, examples, out, cfg.infra_timeout_seconds)
        if not checked.blessed:
            record = Deployment(False, cfg.target, reason=f"infra check failed: {checked.reason}")
            io.write_text(f"{out}/deploy.json", record.to_json())
            log.warning("serve: not deployed: %s", record.reason)
            return record
    if cfg.target == "local":
        where = deploy.local(f"{home}/{version}", name, version, cfg.local_base or str(Path(home).parent))
        served = Path(where).parent
        # Served from a copy elsewhere: the registry's labels still live (and change) in `home`.
        labels = "" if served.resolve() == Path(home).resolve() else f" --set serve.labels_file={home}/labels.json"
        record = Deployment(True, "local", path=where, serve=f"tfpipe serve --model-base {served}{labels}")
    elif cfg.target == "kserve":
        record = deploy.kserve(cfg, home, out, request_logging=request_logging)
    else:
        record = deploy.vertex(cfg, name, version, request_logging)
        if monitoring.vertex_job:
            job = vertex_monitoring.watch(cfg, monitoring, request_logging, record.endpoint, examples_uri or examples,
                                          Schema.read(examples).label, name)
            record = dataclasses.replace(record, monitoring_job=job)
    registry = Registry(home)
    registry.promote(version, CANDIDATE)
    if promote == "auto":
        registry.promote(version, PRODUCTION)
    io.write_text(f"{out}/deploy.json", record.to_json())
    log.info("serve: version %d of %s deployed (%s): %s", version, name,
             "candidate and production" if promote == "auto" else "candidate", record)
    return record
