"""`tfpipe`: the command users type.

    tfpipe run --config pipelines/configs/digits.yaml      # every step, results under runs/<name>-<time>/
    tfpipe ingest --config pipelines/configs/penguins.yaml --out /tmp/penguins
    tfpipe train --config pipelines/configs/penguins.yaml --examples /tmp/penguins --out /tmp/penguins-model
    tfpipe train ... --workers 2                            # a local MultiWorkerMirroredStrategy run
    tfpipe tensorboard runs/digits-20261126-101500          # TensorBoard on 127.0.0.1 for a run's logs
    tfpipe example-data --out data

Each step command is the same as `python -m components <step>`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from components import __main__ as steps


def run_command(args: argparse.Namespace) -> int:
    """Runs the steps in order into a fresh run folder and prints where the results are."""
    from components import ingest
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
    metrics = _train(cfg, run_dir)
    timings["train"] = time.perf_counter() - start
    total = sum(timings.values())
    print(f"\nrun {run_dir}")
    for step, seconds in timings.items():
        print(f"  {step:<8} {seconds:6.1f} s  ({seconds / total:.0%})")
    print(f"  rows     {ingested.rows:,} ({', '.join(f'{k} {v:,}' for k, v in ingested.splits.items())}), "
          f"{ingested.rejected:,} rejected")
    print(f"  eval     {', '.join(f'{k} {v:.4f}' for k, v in metrics.items())}")
    print(f"  schema   {run_dir / 'ingest' / 'schema.json'}")
    print(f"  report   {run_dir / 'ingest' / 'stats.html'}")
    print(f"  model    {run_dir / 'train' / 'model.keras'}")
    print(f"  logs     tfpipe tensorboard {run_dir}")
    return 0


def _train(cfg, run_dir: Path) -> dict[str, float]:
    """The train step in this process, or in `runtime.workers` local processes (MultiWorkerMirroredStrategy)."""
    from components import train
    from components.common import io
    from components.train import launcher

    examples, out = str(run_dir / "ingest"), str(run_dir / "train")
    if cfg.runtime.workers == 1:
        return train.run(cfg.train, examples, out).metrics
    code = launcher.launch(launcher.worker_command(examples, out, str(run_dir / "config.json"), []),
                           cfg.runtime.workers)
    if code:
        raise train.TrainError(f"train: a worker failed (exit status {code}); its output is above")
    return io.read_json(f"{out}/metrics.json")


def tensorboard_command(args: argparse.Namespace) -> int:
    """Serves TensorBoard (the profile plugin included) on a run's logs until interrupted."""
    from tensorboard import program

    path = Path(args.path)
    logdir = next((p for p in (path / "train" / "logs", path / "logs") if p.is_dir()), path)
    if not logdir.is_dir():
        from components.common.errors import TfpipeError

        raise TfpipeError(f"{path}: no such folder; expected a run folder (runs/<name>-<time>) or a logs folder")
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # else its data server logs every load cycle
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(logdir), "--host", args.host, "--port", str(args.port)])
    print(f"TensorBoard on {logdir}: {board.launch()}  (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfpipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on this machine into runs/<name>-<time>/")
    steps.add_config_arguments(run)
    run.set_defaults(handler=run_command)
    steps.add_step_commands(commands)
    board = commands.add_parser("tensorboard", help="serve TensorBoard on a run's logs and print the URL")
    board.add_argument("path", help="a run folder (runs/<name>-<time>), a train output folder, or a logs folder")
    board.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    board.add_argument("--port", type=int, default=6006, help="port (default: 6006; 0 picks a free one)")
    board.set_defaults(handler=tensorboard_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    return steps.run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
