"""`python -m components.train.replicas --replicas 1,1 -- COMMAND...`: a Vertex CustomJob's worker pools here.

Vertex runs every replica of every worker pool with the same container command and sets `CLUSTER_SPEC`
(pools `workerpool0`, `workerpool1`...) and the `TF_CONFIG` derived from it (the first pool is the
chief). This runs COMMAND once per replica the same way, on free 127.0.0.1 ports, with the launcher's
supervision (`components.train.launcher`: output relayed per worker, the others stopped when one fails,
the group restarted after a crash as `restart_job_on_worker_restart` does), and exits with the job's
status. `tfpipe run --package` puts it in front of the train step of a compiled Vertex pipeline.
"""

from __future__ import annotations

import argparse
import sys

from components.train import launcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.train.replicas", description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", required=True, help="replicas per worker pool, comma-separated (1,1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every replica runs")
    args = parser.parse_args(argv)
    replicas = [int(count) for count in args.replicas.split(",")]
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not replicas or replicas[0] != 1 or min(replicas) < 0:
        parser.error("expected --replicas with one replica in the first pool (the chief), then -- COMMAND")
    failure = launcher.launch(command, sum(replicas), environments=lambda _: launcher.vertex_environments(replicas))
    return failure.status if failure else 0


if __name__ == "__main__":
    sys.exit(main())
