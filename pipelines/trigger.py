"""Starts the training pipeline because monitoring asked for it, where the monitoring pipeline runs.

On a cluster that is the code `tfpipe submit` uses (pipelines.targets.cluster.start);
on this machine it is what `tfpipe run` does (pipelines.targets.local.run), and the
monitoring step waits for it, so the run that retrained is finished (or has failed,
and says why) when the monitoring run ends.

Either way it happens in a fresh interpreter (`python -m pipelines.trigger`): a step's
own has only kfp's runtime half (kfp's executor sets _KFP_RUNTIME, which leaves out
the compiler and the client), and a local run needs its own fork server and
kfp.local state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from components.common.config import RunConfig
from components.common.errors import TfpipeError
from pipelines.executor import FORKSERVER
from pipelines.targets.cluster import Target

STEP_ONLY = (FORKSERVER, "_KFP_RUNTIME")  # what a step's environment has that a pipeline's start must not


class RetrainError(TfpipeError):
    """The training run that monitoring started failed, or could not be started."""


def start_training(cfg: RunConfig, target: Target, folder: str) -> str:
    """Starts the training pipeline for `cfg` on `target`; what was started (a run folder, a KFP run, a Vertex
    job). `folder` keeps the config given, the result, and the output (training.log)."""
    if target.local:
        from pipelines.targets.local import absolute_paths

        cfg = absolute_paths(cfg)  # the same folders whatever the working folder
    config = cfg.write(folder)
    env = {k: v for k, v in os.environ.items() if k not in STEP_ONLY}
    with open(f"{folder}/training.log", "w") as log:
        done = subprocess.run([sys.executable, "-m", __name__, str(config), target.to_json(), f"{folder}/started.json"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise RetrainError(f"the training pipeline did not start or failed (exit {done.returncode}); "
                           f"its output: {folder}/training.log")
    with open(f"{folder}/started.json") as f:
        return json.load(f)["started"]


def _start(cfg: RunConfig, target: Target) -> str:
    from pipelines import training

    if target.local:
        from pipelines import summary
        from pipelines.targets import local

        run_dir = local.run(cfg)
        print("\n".join(summary.lines(run_dir)))
        return str(run_dir)
    from pipelines.targets import cluster

    return cluster.start(training.build(cfg, vertex=target.vertex), f"tfpipe-{cfg.name}", target, cfg.pipeline.cache)


def main(config: str, target: str, out: str) -> int:
    from components.common import config as config_lib, io

    try:
        started = _start(config_lib.load(config), Target.from_json(target))
    except TfpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    io.write_json(out, {"started": started})
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
