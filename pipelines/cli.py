"""`tfpipe`: the command users type.

    tfpipe run --config pipelines/configs/digits.yaml      # every step, results under runs/<name>-<time>/
    tfpipe ingest --config pipelines/configs/penguins.yaml --out /tmp/penguins
    tfpipe train --config pipelines/configs/penguins.yaml --examples /tmp/penguins --out /tmp/penguins-model
    tfpipe evaluate --model /tmp/penguins-model --examples /tmp/penguins --out /tmp/penguins-eval
    tfpipe export --model /tmp/penguins-model --examples /tmp/penguins
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
    """Runs the steps in order into a fresh run folder and prints where the results are.

    ingest -> train -> evaluate -> (if blessed) export -> serve (the infra check, then the
    deploy target), in this process (train in `runtime.workers` processes when asked).
    """
    from components import evaluate, export, ingest
    from components.serve import step as serve
    from components.common import config as config_lib
    from components.evaluate.metrics import headline

    cfg = config_lib.load(args.config, args.overrides)
    run_dir = Path(cfg.runs_root) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=False)
    cfg.write(run_dir)
    examples, model = str(run_dir / "ingest"), str(run_dir / "train")
    timings = {}

    def timed(step: str, work):
        start = time.perf_counter()
        result = work()
        timings[step] = time.perf_counter() - start
        return result

    ingested = timed("ingest", lambda: ingest.run(cfg.ingest, examples))
    timed("train", lambda: _train(cfg, run_dir))
    evaluated = timed("evaluate", lambda: evaluate.run(cfg.evaluate, model, examples, str(run_dir / "evaluate"),
                                                       f"{cfg.model_home}/blessed.json"))
    exported = timed("export", lambda: export.run(cfg.export, model, examples, cfg.model_home)) \
        if evaluated.blessed else None
    deployed = timed("serve", lambda: serve.run(cfg.deploy, cfg.model_home, exported.version, examples,
                                                str(run_dir / "serve"))) if exported else None
    total = sum(timings.values())
    print(f"\nrun {run_dir}")
    for step, seconds in timings.items():
        print(f"  {step:<9} {seconds:6.1f} s  ({seconds / total:.0%})")
    print(f"  rows      {ingested.rows:,} ({', '.join(f'{k} {v:,}' for k, v in ingested.splits.items())}), "
          f"{ingested.rejected:,} rejected")
    print(f"  test      {headline(evaluated.metrics)} ({int(evaluated.metrics['count']):,} examples)")
    print(f"  blessed   {'yes' if evaluated.blessed else 'NO'} ({run_dir / 'evaluate' / 'blessing.json'})")
    print(f"  schema    {run_dir / 'ingest' / 'schema.json'}")
    print(f"  reports   {run_dir / 'ingest' / 'stats.html'}, {run_dir / 'evaluate' / 'report.html'}")
    print(f"  model     {run_dir / 'train' / 'model.keras'}")
    print(f"  serving   {exported.path if exported else 'not exported: the model was not blessed'}")
    if deployed is not None:
        print(f"  deployed  {_deployment(deployed)} ({run_dir / 'serve' / 'deploy.json'})")
    print(f"  logs      tfpipe tensorboard {run_dir}")
    return 0


def _deployment(record: dict) -> str:
    if not record["deployed"]:
        return f"NO: {record['reason']}"
    if record["target"] == "local":
        return f"{record['path']}; serve it with: {record['serve']}"
    return f"{record['target']}: {record.get('manifest') or record.get('endpoint')}"


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
