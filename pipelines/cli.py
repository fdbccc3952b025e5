"""`tfpipe`: the command users type.

    tfpipe run --config pipelines/configs/digits.yaml      # every step, results under runs/<name>-<time>/
    tfpipe ingest --config pipelines/configs/penguins.yaml --out /tmp/penguins
    tfpipe train --config pipelines/configs/penguins.yaml --examples /tmp/penguins --out /tmp/penguins-model
    tfpipe example-data --out data

Each step command is the same as `python -m components <step>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from components import __main__ as steps


def run_command(args: argparse.Namespace) -> int:
    """Runs the steps in order into a fresh run folder and prints where the results are."""
    from components import ingest, train
    from components.common import config as config_lib

    cfg = config_lib.load(args.config, args.overrides)
    run_dir = Path(cfg.runs_root) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=False)
    cfg.write(run_dir)
    timings = {}
    start = time.perf_counter()
    ingested = ingest.run(cfg.ingest, str(run_dir / "ingest"))
    timings["ingest"] = time.perf_counter() - start
    start = time.perf_counter()
    trained = train.run(cfg.train, str(run_dir / "ingest"), str(run_dir / "train"))
    timings["train"] = time.perf_counter() - start
    total = sum(timings.values())
    print(f"\nrun {run_dir}")
    for step, seconds in timings.items():
        print(f"  {step:<8} {seconds:6.1f} s  ({seconds / total:.0%})")
    print(f"  rows     {ingested.rows:,} ({', '.join(f'{k} {v:,}' for k, v in ingested.splits.items())}), "
          f"{ingested.rejected:,} rejected")
    print(f"  eval     {', '.join(f'{k} {v:.4f}' for k, v in trained.metrics.items())}")
    print(f"  schema   {run_dir / 'ingest' / 'schema.json'}")
    print(f"  report   {run_dir / 'ingest' / 'stats.html'}")
    print(f"  model    {run_dir / 'train' / 'model.keras'}")
    print(f"  logs     tensorboard --logdir {run_dir / 'train' / 'logs'} --host 127.0.0.1")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfpipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on this machine into runs/<name>-<time>/")
    steps.add_config_arguments(run)
    run.set_defaults(handler=run_command)
    steps.add_step_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return steps.run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
