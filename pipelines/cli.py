"""`tfpipe`: the command users type.

    tfpipe run --config pipelines/configs/digits.yaml      # the whole DAG with kfp.local, into runs/
    tfpipe compile --config pipelines/configs/digits.yaml --out digits.yaml   # KFP IR YAML
    tfpipe submit --config ... --kfp-host https://kfp.example.com/pipeline    # one run on a KFP cluster
    tfpipe schedule --config ... --vertex --project p --pipeline-root gs://b/runs --cron "0 3 * * *"
    tfpipe schedule --config ... --pipeline monitoring --kfp-host https://kfp.example.com/pipeline --cron "0 * * * *"
    tfpipe run --config pipelines/configs/retraining.yaml --pipeline monitoring   # retrains here if asked to
    tfpipe run --config pipelines/configs/retraining.yaml --pipeline batch   # scores the newest span with production
    tfpipe predict --model-base runs/serving/churn --label production --source data/churn/2026-11-03 --out preds
    tfpipe ingest --config pipelines/configs/penguins.yaml --out /tmp/penguins
    tfpipe train --config pipelines/configs/penguins.yaml --examples /tmp/penguins --out /tmp/penguins-model
    tfpipe evaluate --model /tmp/penguins-model --examples /tmp/penguins --out /tmp/penguins-eval
    tfpipe export --model /tmp/penguins-model --examples /tmp/penguins
    tfpipe whatif report --model /tmp/penguins-model --examples /tmp/penguins --out /tmp/penguins-whatif
    tfpipe whatif serve --model-base runs/serving/penguins --examples /tmp/penguins --compare production
    tfpipe train ... --workers 2                            # a local MultiWorkerMirroredStrategy run
    tfpipe tensorboard runs/tfpipe-digits-2026-11-26-10-15-00-000000   # TensorBoard on 127.0.0.1
    tfpipe example-data --out data

Each step command is the same as `python -m components <step>`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from components import __main__ as steps


def run_command(args: argparse.Namespace) -> int:
    """Runs the whole DAG on this machine (kfp.local) and prints what it made and where."""
    from components.common import config as config_lib
    from components.common.errors import TfpipeError
    from pipelines import summary
    from pipelines.targets import local

    if bool(args.step) != bool(args.after):
        raise TfpipeError("--step and --from go together: the step to run, and the run folder whose outputs it takes")
    if args.step and args.pipeline != "training":
        raise TfpipeError(f"--step runs one step of the training pipeline; the {args.pipeline} pipeline has no --step")
    package = None
    if args.package:
        from pipelines.targets.package import Package

        if args.config or args.overrides or args.step or args.pipeline != "training":
            raise TfpipeError("--package runs a compiled pipeline file as it is: without --config, --set, --step "
                              "or --pipeline (compile with those instead)")
        package = Package.read(args.package)
        cfg = package.config
    else:
        cfg = config_lib.load(args.config, args.overrides)
    run_dir = local.run(cfg, docker=args.docker, step=args.step or "", after=args.after or "", verbose=args.verbose,
                        pipeline=args.pipeline, package=package)
    cfg.write(run_dir)
    monitoring = args.pipeline == "monitoring" or (package is not None and package.name.endswith("-monitoring"))
    found = summary.monitoring_lines(run_dir) if monitoring else summary.batch_lines(run_dir) \
        if args.pipeline == "batch" else summary.lines(run_dir, alone=bool(args.step))
    print("\n" + "\n".join(found))
    return 0


def compile_command(args: argparse.Namespace) -> int:
    """Writes the pipeline's IR YAML, for a KFP cluster or Vertex AI Pipelines."""
    from kfp import compiler

    from components.common import config as config_lib

    cfg = config_lib.load(args.config, args.overrides)
    pipeline = build(cfg, args.pipeline, vertex=args.vertex)
    compiler.Compiler().compile(pipeline, args.out)
    print(f"pipeline {pipeline.name} -> {args.out}")
    return 0


def cluster_command(args: argparse.Namespace) -> int:
    """`submit` (one run) or `schedule` (a recurring run) on a KFP cluster or Vertex AI Pipelines."""
    from components.common import config as config_lib
    from components.common.errors import TfpipeError
    from pipelines.targets import cluster

    target = cluster.Target(kfp_host=args.kfp_host or "", namespace=args.namespace, experiment=args.experiment,
                            vertex=args.vertex, project=args.project or "", region=args.region,
                            pipeline_root=args.pipeline_root or "").check()
    if target.local:
        raise TfpipeError("expected a target: --kfp-host URL, or --vertex with --project and --pipeline-root")
    cfg = config_lib.load(args.config, args.overrides)
    pipeline = build(cfg, args.pipeline, vertex=args.vertex, target=target)
    made = cluster.start(pipeline, pipeline.name, target, cfg.pipeline.cache,
                         cron=args.cron if args.command == "schedule" else "")
    print(f"{pipeline.name}: {made}")
    return 0


def build(cfg, pipeline: str, vertex: bool, target=None):
    """The training, monitoring or batch pipeline function for `cfg`; a monitoring pipeline retrains on `target`."""
    if pipeline == "monitoring":
        from pipelines import monitoring

        return monitoring.build(cfg, target)
    if pipeline == "batch":
        from pipelines import batch

        return batch.build(cfg)
    from pipelines import training

    return training.build(cfg, vertex=vertex)


def tensorboard_command(args: argparse.Namespace) -> int:
    """Serves TensorBoard (the profile plugin included) until interrupted: on a run folder, every log the run
    wrote, each step's as runs of its own (train/..., evaluate/..., tune/...); on any other folder, its logs."""
    from tensorboard import program

    path = Path(args.path)
    if not path.is_dir():
        from components.common.errors import TfpipeError

        raise TfpipeError(f"{path}: no such folder; expected a run folder (runs/<name>-<time>) or a logs folder")
    logs = run_logs(path)
    spec = ",".join(f"{name}:{folder}" for name, folder in logs.items()) if logs else str(path / "logs")
    if not logs and not (path / "logs").is_dir():
        spec = str(path)
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # else its data server logs every load cycle
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir_spec", spec, "--host", args.host, "--port", str(args.port)])
    print(f"TensorBoard on {', '.join(logs) or spec}: {board.launch()}  (Ctrl-C stops it)", flush=True)
    return steps.wait_for_interrupt()


def run_logs(run_dir: Path) -> dict[str, Path]:
    """A run folder's TensorBoard logs by step, following a cached train step to the run where it ran."""
    from pipelines import summary

    if not (run_dir / "config.json").exists():
        return {}
    outputs = summary.outputs_of(run_dir)
    found = {"train": outputs.model / "logs", "evaluate": outputs.evaluation / "logs",
             "tune": run_dir / "plan-trials" / "experiment"}  # the HParams experiment; its sessions are the trials'
    found |= {f"tune/{trial.parent.parent.name}": trial for trial in sorted(run_dir.glob("for-loop-*/run-trial/logs"))}
    return {name: folder for name, folder in found.items() if folder.is_dir()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfpipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole pipeline on this machine (kfp.local) into runs/")
    steps.add_config_arguments(run)
    run.add_argument("--step", choices=("train", "evaluate", "whatif", "export", "serve"),
                     help="run this step alone on the outputs of the run given by --from")
    run.add_argument("--from", dest="after", metavar="RUN", help="an earlier run folder (runs/tfpipe-<name>-<time>)")
    run.add_argument("--verbose", action="store_true",
                     help="show every task's output as it runs (it always goes to the run's pipeline.log)")
    run.add_argument("--docker", action="store_true",
                     help="run each step in the component image (pipeline.base_image; make images) with no network")
    run.add_argument("--package", metavar="FILE",
                     help="run a compiled pipeline file (tfpipe compile, for KFP or --vertex) instead of the DAG "
                          "built from --config: a Vertex train job's worker pools run here as replicas")
    add_pipeline_argument(run)
    run.set_defaults(handler=run_command)
    compile_ = commands.add_parser("compile", help="write the pipeline as KFP IR YAML for a cluster or Vertex")
    steps.add_config_arguments(compile_)
    compile_.add_argument("--out", default="pipeline.yaml", help="the YAML file to write (default pipeline.yaml)")
    compile_.add_argument("--vertex", action="store_true", help="for Vertex AI Pipelines (train as a CustomJob)")
    add_pipeline_argument(compile_)
    compile_.set_defaults(handler=compile_command)
    steps.add_step_commands(commands)
    for command, help_text in (("submit", "compile and start one run on a KFP cluster or Vertex AI Pipelines"),
                               ("schedule", "compile and create a recurring run (cron) on KFP or Vertex")):
        target = commands.add_parser(command, help=help_text)
        steps.add_config_arguments(target)
        target.add_argument("--kfp-host", help="the KFP API endpoint, e.g. https://kfp.example.com/pipeline")
        target.add_argument("--experiment", default="tfpipe", help="KFP experiment (default: tfpipe)")
        target.add_argument("--namespace", default="kubeflow", help="KFP namespace (default: kubeflow)")
        target.add_argument("--vertex", action="store_true", help="Vertex AI Pipelines instead of a KFP cluster")
        target.add_argument("--project", help="Google Cloud project (Vertex)")
        target.add_argument("--region", default="us-central1", help="Vertex region (default: us-central1)")
        target.add_argument("--pipeline-root", help="gs:// folder for the run's outputs (Vertex)")
        add_pipeline_argument(target)
        if command == "schedule":
            target.add_argument("--cron", required=True,
                                help="when: 5 fields (Vertex style) or 6 with seconds first (KFP style)")
        target.set_defaults(handler=cluster_command)
    board = commands.add_parser("tensorboard", help="serve TensorBoard on a run's logs and print the URL")
    board.add_argument("path", help="a run folder (runs/<name>-<time>), a train output folder, or a logs folder")
    board.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    board.add_argument("--port", type=int, default=6006, help="port (default: 6006; 0 picks a free one)")
    board.set_defaults(handler=tensorboard_command)
    return parser


def add_pipeline_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline", choices=("training", "monitoring", "batch"), default="training",
                        help="training (the default); monitoring: the served model's request logs against its "
                             "training data, retraining where monitor.retrain_on says; batch: the new span ingested, "
                             "validated and scored by the production model (predict.out)")


def main(argv: list[str] | None = None) -> int:
    return steps.run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
