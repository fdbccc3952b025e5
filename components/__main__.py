"""`python -m components <step> ...`: each step from a shell or `docker run`, without kfp.

    python -m components ingest --config pipelines/configs/digits.yaml --out runs/digits/ingest
    python -m components ingest --set ingest.source=data/penguins/penguins.csv --set ingest.label=species --out /tmp/x
    python -m components example-data --out data
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace

from components.common import config as config_lib


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run config (pipelines/configs/*.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value; repeatable")


def add_step_commands(commands) -> None:
    """The step commands, shared by `python -m components` and the `tfpipe` CLI."""
    ingest = commands.add_parser("ingest", help="source data -> sharded TFRecords, schema.json, statistics")
    add_config_arguments(ingest)
    ingest.add_argument("--out", required=True, help="output folder (replaced whole on success)")
    ingest.set_defaults(handler=ingest_command)

    train = commands.add_parser("train", help="examples + schema -> Keras model, checkpoints, TensorBoard logs")
    add_config_arguments(train)
    train.add_argument("--examples", required=True, help="the ingest step's output folder")
    train.add_argument("--out", required=True, help="output folder for the model, logs and checkpoints")
    train.add_argument("--workers", type=int, default=None,
                       help="train in this many local processes with MultiWorkerMirroredStrategy "
                            "(default: runtime.workers)")
    train.set_defaults(handler=train_command)

    tune = commands.add_parser("tune", help="examples -> hyperparameter trials, the best values, an HParams log")
    add_config_arguments(tune)
    tune.add_argument("--examples", required=True, help="the ingest step's output folder")
    tune.add_argument("--out", required=True, help="output folder for the trials, trials.json/html, best.json")
    tune.set_defaults(handler=tune_command)

    evaluate = commands.add_parser("evaluate", help="model + test split -> metrics, slices, report, blessing")
    add_config_arguments(evaluate)
    evaluate.add_argument("--model", required=True, help="the train step's output folder (holds model.keras)")
    evaluate.add_argument("--examples", required=True, help="the ingest step's output folder")
    evaluate.add_argument("--out", required=True, help="output folder (replaced whole on success)")
    evaluate.add_argument("--home", help="the model's serving folder, whose registry names the baseline "
                                         "(default: <export base>/<model name>)")
    evaluate.set_defaults(handler=evaluate_command)

    export = commands.add_parser("export", help="model -> the next SavedModel version in TF Serving's layout")
    add_config_arguments(export)
    export.add_argument("--model", required=True, help="the train step's output folder (holds model.keras)")
    export.add_argument("--examples", required=True, help="the ingest step's output folder (schema, test split)")
    export.add_argument("--home", help="the model's serving folder (default: <export base>/<model name>)")
    export.add_argument("--evaluation", default="",
                        help="the evaluate step's output folder, whose verdict and metrics the registry records")
    export.set_defaults(handler=export_command)

    validate = commands.add_parser("validate", help="new examples' statistics against a baseline's -> anomalies, "
                                                    "drift, report; exit 1 when the gate fails")
    add_config_arguments(validate)
    validate.add_argument("--examples", required=True, help="the new data: an ingest step's output folder")
    validate.add_argument("--baseline", help="the last good data's ingest output folder (default: the examples the "
                                             "registry's production model was trained on; none: a first run, "
                                             "which passes)")
    validate.add_argument("--home", help="the model's serving folder whose registry names the baseline "
                                         "(default: <export base>/<model name>)")
    validate.add_argument("--out", required=True, help="output folder (replaced whole on success)")
    validate.set_defaults(handler=validate_command)

    predict = commands.add_parser("predict", help="a registry version scores examples or a source -> predictions "
                                                  "keyed by ingest.key (Parquet, or a BigQuery table)")
    add_config_arguments(predict)
    predict.add_argument("--model-base", required=True, help="the model's folder of versions, <base>/<name>")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=int, help="a version by number")
    which.add_argument("--label", help="a registry alias, e.g. production")
    data = predict.add_mutually_exclusive_group(required=True)
    data.add_argument("--examples", help="an ingest step's output folder (every split is scored)")
    data.add_argument("--source", help="a file, folder, glob or bq:// table, read and typed as ingest reads it "
                                       "(its reader options from the config's ingest section)")
    predict.add_argument("--out", required=True, help="a folder of Parquet files (replaced whole), or "
                                                      "bq://project.dataset.table (replaced by one load job)")
    predict.add_argument("--report", help="the folder of _rejected.jsonl and _predict.json (default: --out; "
                                          "needed with a bq:// --out)")
    predict.add_argument("--keep", help="columns copied beside each prediction, comma-separated (predict.keep)")
    predict.set_defaults(handler=predict_command)

    models = commands.add_parser("models", help="the model registry: versions, aliases, promotion, rollback")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    listing = models_commands.add_parser("list", help="every version with its aliases, blessing, key metrics")
    listing.add_argument("--base", required=True, help="the model's folder of versions, <base>/<name>")
    listing.add_argument("--json", action="store_true", help="print the registry's record instead of a table")
    listing.set_defaults(handler=models_list_command)
    promote = models_commands.add_parser("promote", help="point an alias at a version; a server following the "
                                                         "registry's labels file serves it without a restart")
    add_config_arguments(promote)  # --set deploy.target=vertex (+ project, storage_uri) moves the alias on Vertex
    promote.add_argument("--base", required=True, help="the model's folder of versions, <base>/<name>")
    promote.add_argument("--version", type=int, required=True, help="a registered version")
    promote.add_argument("--alias", default="production", help="default: production")
    promote.add_argument("--force", action="store_true", help="promote to production a version that is not blessed")
    promote.set_defaults(handler=models_promote_command)
    rollback = models_commands.add_parser("rollback", help="point an alias back at its previous version")
    add_config_arguments(rollback)
    rollback.add_argument("--base", required=True, help="the model's folder of versions, <base>/<name>")
    rollback.add_argument("--alias", default="production", help="default: production")
    rollback.set_defaults(handler=models_rollback_command)

    whatif = commands.add_parser("whatif", help="What-If analysis of a trained model")
    whatif_commands = whatif.add_subparsers(dest="whatif_command", required=True)
    whatif_report = whatif_commands.add_parser("report", help="model + test split -> report.html, whatif.json")
    add_config_arguments(whatif_report)
    whatif_report.add_argument("--model", required=True, help="the train step's output folder (holds model.keras)")
    whatif_report.add_argument("--examples", required=True, help="the ingest step's output folder")
    whatif_report.add_argument("--out", required=True, help="output folder (replaced whole on success)")
    whatif_report.add_argument("--compare", default="", help="another model on the same label (a train output "
                                                             "folder or model.keras): both side by side")
    whatif_report.set_defaults(handler=whatif_report_command)
    whatif_serve = whatif_commands.add_parser("serve", help="the interactive What-If page on 127.0.0.1")
    whatif_serve.add_argument("--model-base", required=True, help="the exported model's folder of versions")
    whatif_serve.add_argument("--examples", required=True, help="the ingest step's output folder")
    whatif_serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    whatif_serve.add_argument("--port", type=int, default=8080, help="page port (default 8080; 0 picks one)")
    whatif_serve.add_argument("--compare", default="", help="a registry alias (production) or version to hold the "
                                                            "candidate against; the page can then promote it")
    whatif_serve.add_argument("--read-only", action="store_true", help="no promote button, and the promote "
                                                                       "request always refused")
    whatif_serve.set_defaults(handler=whatif_serve_command)

    serve = commands.add_parser("serve", help="serve a model's versions over TF Serving's REST and gRPC APIs")
    add_config_arguments(serve)
    serve.add_argument("--model-base", help="the folder of numbered versions, <base>/<name> (default: the "
                                            "export's model home)")
    serve.add_argument("--model-name", help="the name clients use (default: the folder's name)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--rest-port", type=int, help="REST port (default 8501; 0 picks a free one)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 8500; 0 picks a free one)")
    serve.add_argument("--enable-batching", action="store_true", help="merge concurrent requests into batches")
    serve.add_argument("--allow-non-finite", action="store_true",
                       help="accept NaN, Infinity and floats past float32 in requests (serve.allow_non_finite)")
    serve.add_argument("--log-sampling-rate", type=float,
                       help="log this fraction of requests as PredictionLogs (serve.logging.sampling_rate)")
    serve.add_argument("--log-dir", help="folder of the request log files (serve.logging.dir)")

    monitor = commands.add_parser("monitor", help="request logs + training examples (+ labels) -> skew, drift, "
                                                  "quality, report; exit 1 when a threshold is crossed")
    add_config_arguments(monitor)
    monitor.add_argument("--log", "--logs", dest="logs",
                         help="the server's request log folder (default: serve.logging.dir)")
    monitor.add_argument("--predictions", help="instead of request logs: batch predictions, a predict step's output "
                                               "folder ({YYYY}-{MM}-{DD} for every day present), for their quality")
    monitor.add_argument("--examples", help="the training data, an ingest step's output folder (default: the "
                                            "examples the registry's production model was trained on)")
    monitor.add_argument("--out", required=True, help="output folder for findings.json, report.html, windows/")
    monitor.add_argument("--window", "--window-seconds", dest="window", type=duration,
                         help="window length: 3600, 3600s, 90m, 1h or 1d (default: monitor.window_seconds)")
    monitor.add_argument("--since", type=int, default=0, help="only requests logged from this time (epoch seconds)")
    monitor.add_argument("--labels", help="the labels that arrived since: a file, folder, glob or bq:// table of "
                                          "key, label and optionally the time it became known, {YYYY}-{MM}-{DD} "
                                          "for every day present (default: monitor.labels.source)")
    monitor.set_defaults(handler=monitor_command)
    serve.set_defaults(handler=serve_command)

    data = commands.add_parser("example-data", help="write the bundled example data sets (digits PNGs, penguins CSV)")
    data.add_argument("--out", default="data", help="folder to write into (default: data)")
    data.set_defaults(handler=example_data_command)


def ingest_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "ingest")
    from components import ingest  # TensorFlow loads in seconds: only once the config is known to be good

    result = ingest.run(cfg.ingest, args.out, cfg.beam)
    cfg.write(args.out)
    print(f"{result.rows:,} rows ({', '.join(f'{k} {v:,}' for k, v in result.splits.items())}), "
          f"{result.rejected:,} rejected, {result.rows_per_second:,.0f} rows/s -> {args.out}")
    return 0


def train_command(args: argparse.Namespace) -> int:
    """The pipeline's own launch (components.train.launcher.train): `--workers N` only sets runtime.workers."""
    workers = [f"runtime.workers={args.workers}"] if args.workers else []
    cfg = config_lib.load_section(args.config, [*args.overrides, *workers], "train")
    cfg.runtime.validate()
    from components.train import launcher
    from components.train.errors import WorkersFailed

    try:
        metrics = launcher.train(cfg, args.examples, args.out)
    except WorkersFailed as e:  # exits as the failed worker did, as a shell would report it
        print(f"error: {e}", file=sys.stderr)
        return e.status
    print(f"eval {', '.join(f'{k} {v:.4f}' for k, v in metrics.items())} -> {args.out}")
    return 0


def tune_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "tune")
    cfg.train.validate()
    from components import tune

    result = tune.run(cfg.tune, cfg.train, args.examples, args.out)
    cfg.write(args.out)
    failed = sum(t.status == "failed" for t in result.trials)
    if result.best is None:
        print(f"error: tune: none of {len(result.trials)} trials completed ({failed} failed, the others stopped "
              f"early); their errors are in {args.out}/trials.html", file=sys.stderr)
        return 1
    best = result.best
    print(f"{len(result.trials)} trials ({failed} failed); best {best.id} {best.params} {cfg.tune.metric} "
          f"{best.metric:.4f} -> {args.out}/trials.html")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "evaluate")
    from components import evaluate

    result = evaluate.run(cfg.evaluate, args.model, args.examples, args.out, args.home or cfg.model_home, cfg.beam)
    cfg.write(args.out)
    from components.evaluate.metrics import headline

    print(f"{result.verdict.upper() if result.verdict != 'not blessed' else 'NOT blessed'}: "
          f"{headline(result.metrics)} -> {args.out}")
    return 0


def validate_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "validation")
    from components import validate
    from components.common.registry import Registry

    baseline = args.baseline
    if baseline is None:
        production = Registry(args.home or cfg.model_home).baseline()
        baseline = production.examples if production is not None else None
    result = validate.run(cfg.validation, args.examples, baseline or None, args.out)
    cfg.write(args.out)
    print(f"{result.anomalies.headline()} -> {args.out}/report.html")
    return 0 if result.validated else 1


def predict_command(args: argparse.Namespace) -> int:
    keep = [f"predict.keep=[{args.keep}]"] if args.keep is not None else []
    cfg = config_lib.load_section(args.config, [*args.overrides, *keep], "predict")
    from components import predict
    from components.predict import model

    version = model.resolve(args.model_base, args.version, args.label or "")
    result = predict.run(cfg.predict, version, args.out, examples=args.examples or "", source=args.source or "",
                         report=args.report or "", ingest=cfg.ingest, beam=cfg.beam)
    print(f"{result.rows:,} rows scored by {version.describe()}, {result.rejected:,} rejected "
          f"({result.report}/_rejected.jsonl), {result.rows_per_second:,.0f} rows/s -> {args.out}")
    return 0


def models_list_command(args: argparse.Namespace) -> int:
    from components.common import registry_commands

    print(registry_commands.list_models(args.base, as_json=args.json))
    return 0


def _vertex_deploy(args: argparse.Namespace):
    """The deploy section when it names Vertex: promotions then move the alias in Vertex Model Registry too."""
    cfg = config_lib.load_section(args.config, args.overrides, "deploy")
    return cfg.deploy if cfg.deploy.target == "vertex" else None


def models_promote_command(args: argparse.Namespace) -> int:
    from components.common import registry_commands

    print(registry_commands.promote_model(args.base, args.version, args.alias, args.force, vertex=_vertex_deploy(args)))
    return 0


def models_rollback_command(args: argparse.Namespace) -> int:
    from components.common import registry_commands

    print(registry_commands.rollback_model(args.base, args.alias, vertex=_vertex_deploy(args)))
    return 0


def export_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "export")
    from components import export

    result = export.run(cfg.export, args.model, args.examples, args.home or cfg.model_home, args.evaluation)
    print(f"version {result.version} ({', '.join(result.signatures)}) -> {result.path}")
    return 0


def whatif_report_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "whatif")
    from components import whatif

    compare = whatif.Compared(args.compare) if args.compare else None
    result = whatif.run(cfg.whatif, args.model, args.examples, args.out, cfg.evaluate, compare)
    print(f"What-If report on {result.document.count:,} test examples"
          f"{' comparing two models' if compare else ''} -> {args.out}/report.html")
    return 0


def whatif_serve_command(args: argparse.Namespace) -> int:
    from components.whatif import page

    with page.running(args.model_base, args.examples, args.host, args.port, args.compare, args.read_only) as url:
        print(f"What-If page: {url}  (Ctrl-C stops it)", flush=True)
        return wait_for_interrupt()


def wait_for_interrupt() -> int:
    """Blocks while background servers serve; Ctrl-C ends it with exit status 0."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def serve_command(args: argparse.Namespace) -> int:
    flags = {"model_base": args.model_base, "model_name": args.model_name, "host": args.host,
             "rest_port": args.rest_port, "grpc_port": args.grpc_port,
             "logging.sampling_rate": args.log_sampling_rate, "logging.dir": args.log_dir}
    overrides = [f"serve.{k}={v}" for k, v in flags.items() if v is not None]
    if args.enable_batching:
        overrides.append("serve.batching.enabled=true")
    if args.allow_non_finite:
        overrides.append("serve.allow_non_finite=true")
    cfg = config_lib.load_section(args.config, [*args.overrides, *overrides], "serve")
    from components.serve.server import ModelServer

    serve_cfg = cfg.serve if cfg.serve.model_base else replace(cfg.serve, model_base=cfg.model_home)
    ModelServer(serve_cfg).serve_forever()
    return 0


def monitor_command(args: argparse.Namespace) -> int:
    cfg = config_lib.load_section(args.config, args.overrides, "monitor")
    from components import monitor

    logs = args.logs or cfg.serve.logging.dir
    if args.predictions and args.logs:
        raise config_lib.ConfigError("--predictions and --log: expected one of them")
    if not logs and not args.predictions:
        raise config_lib.ConfigError("--log: expected the server's request log folder (or serve.logging.dir), or "
                                     "--predictions")
    examples = args.examples or monitor.production(cfg.model_home).examples
    labels = args.labels or ""
    blessed = monitor.blessed(cfg.model_home) if labels or cfg.monitor.labels.source else {}
    if args.predictions:
        result = monitor.batch(cfg.monitor, args.predictions, examples, args.out, labels, blessed, args.window)
    else:
        result = monitor.run(cfg.monitor, logs, examples, args.out, window=args.window, since=args.since,
                             labels=labels, blessed=blessed)
    print(f"{result.findings.headline()} -> {args.out}/report.html")
    return 1 if result.crossed else 0


def duration(text: str) -> int:
    """Seconds from `3600`, `3600s`, `90m`, `1h` or `1d` (argparse's type for --window)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    try:
        seconds = int(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, or a number with s, m, h or d") from None
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least 1 second")
    return seconds


def example_data_command(args: argparse.Namespace) -> int:
    from components import data

    for name, path in data.write_all(args.out).items():
        print(f"{name}: {path}")
    return 0


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parses, runs the chosen command, and turns expected errors into one clear line and exit code 2."""
    from components.common.errors import TfpipeError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except TfpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__.split("\n\n")[0])
    add_step_commands(parser.add_subparsers(dest="command", required=True))
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
