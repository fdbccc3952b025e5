"""Starts the training pipeline because monitoring asked for it, where the monitoring pipeline runs.

On a cluster that is the code `tfpipe submit` uses (pipelines.targets.cluster.start);
on this machine it is what `tfpipe run` does (pipelines.targets.local.run), and the
monitoring step waits for it, so the run that retrained is finished (or has failed,
and says why) when the monitoring run ends.

Either way it happens in a fresh interpreter (`python -m pipelines.retraining`): a step's
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
        cfg = cfg.with_absolute_paths()  # the same folders whatever the working folder
    config = cfg.write(folder)
    env = {k: v for k, v in os.environ.items() if k not in STEP_ONLY}
    with open(f"{folder}/training.log", "w") as log:
        done = subprocess.run([sys.executable, "-m", "pipelines.retraining", str(config), target.to_json(),
                               f"{folder}/started.json"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise RetrainError(f"the training pipeline did not start or failed (exit {done.returncode}); "
                           f"its output: {folder}/training.log")
    with open(f"{folder}/started.json") as f:
        return json.load(f)["started"]
