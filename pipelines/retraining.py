"""`python -m pipelines.retraining CONFIG TARGET OUT`: the fresh interpreter that starts a training run for
monitoring (pipelines.trigger says why it is a fresh one): `tfpipe run` here, `tfpipe submit`'s code on a
cluster; what it started goes to OUT as JSON.
"""

from __future__ import annotations

import sys

from components.common.config import RunConfig
from components.common.errors import TfpipeError
from pipelines.targets.cluster import Target


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
