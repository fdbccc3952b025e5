"""The monitor step: the server's request logs against the training data (skew) and window against window (drift).

    result = monitor.run(cfg.monitor, "runs/request_logs", "runs/<run>/ingest", "runs/<run>/monitor",
                         labels="data/labels/{YYYY}-{MM}-{DD}.csv", blessed=production.metrics)
    result.crossed  # a threshold was crossed: `tfpipe monitor` exits 1
    result.retrain  # and `monitor.retrain_on` asks for a training run
    monitor.scheduled(cfg, "runs/<run>/monitor", time.time())  # the monitoring pipeline's: recent windows

Every log file is read (components.monitor.logs), each request decoded by
the training schema into the window its time falls in (decode), each window's
statistics computed as ingest computes a data set's (statistics), and skew
and drift measured with validate's distances (compare). With labels
(`monitor.labels` or `labels`), each window's predictions are joined to them
by example key and their quality measured and judged (labels, quality).
Nothing is read twice, and a window's rows go once its statistics exist.
`out` gets, whole or not at all: findings.json, report.html, and
windows/<start>/{schema.pbtxt,stats.pb} for each window with requests.

A run that would compare nothing, or unlike things, is an error (exit 2) rather
than a passing window: a log folder without a single record (a wrong folder, a
server that does not log), requests that share no feature with the training
data or predictions in none of its classes (the log of another model).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from components.common import io
from components.common.config import MonitorConfig, RunConfig
from components.common.errors import TfpipeError
from components.common.metadata import DataMetadata
from components.common.registry import Baseline, Registry
from components.common.schema import Schema
from components.common.task import Task, task_of
from components.monitor import batch_predictions, compare, labels as labels_lib, logs, quality, report, statistics
from components.monitor.decode import Decoder, Traffic
from components.monitor.errors import MonitorError
from components.monitor.findings import Anomaly, Findings, Window
from components.validate.profile import Profile, profiles


@dataclass(frozen=True)
class MonitorResult:
    out: str
    findings: Findings

    @property
    def crossed(self) -> bool:
        return self.findings.crossed

    @property
    def retrain(self) -> bool:
        return self.findings.retrain


def run(cfg: MonitorConfig, log_dir: str, training_examples: str, out: str, window: int | None = None,
        since: int = 0, until: int | None = None, labels: str = "", blessed: dict[str, float] | None = None
        ) -> MonitorResult:
    """Monitors the requests logged in `log_dir` from `since` to before `until` (epoch seconds; None: to the
    end) in windows of `window` seconds (default `cfg.window_seconds`) against the ingest output
    `training_examples`, into the folder `out`; with `labels` (default `cfg.labels.source`) their quality too,
    against `blessed`, the served model's blessed evaluation (`production(...).metrics`)."""
    seconds = _seconds(cfg, window)
    schema, meta = _training(training_examples)
    _check_thresholds(cfg, schema)
    task = task_of(schema)
    judge = _judge(cfg, schema, task, labels or cfg.labels.source, blessed or {})
    paths = logs.files(log_dir)
    read = logs.Read([], [])
    traffic: dict[int, Traffic] = {}
    decoder = Decoder(schema, task, judge.sliced if judge else ())
    for record in logs.records(paths, read):
        when = record.log_metadata.timestamp_secs
        if since <= when and (until is None or when < until):
            decoder.add(record, traffic.setdefault(when // seconds * seconds, Traffic()))
    if not read.records:
        raise MonitorError(f"{log_dir}: not one request record in its {len(paths)} files; expected the server's "
                           "request logs (serve.logging.dir, with serve.logging.sampling_rate > 0)")
    if problem := decoder.mismatch():
        raise MonitorError(f"request logs {log_dir} against training examples {training_examples}: {problem}; "
                           "the log is of another model, or the examples are")
    last = quality.last_predictions({start: t.scored for start, t in traffic.items()})
    if judge is not None:
        labels_lib.check_key_kind(judge.labels, list(last))
    used: set[str] = set()
    training = compare.training_profiles(meta)
    windows, seen, written = [], {}, {}
    previous = None
    for start in sorted(traffic):
        if previous is not None and start > previous + seconds:
            windows.append(Window(previous + seconds, start, 0))  # a gap: windows without a request
        requests = traffic.pop(start)  # its rows are not needed once its statistics exist
        window_meta = statistics.metadata(schema, task, requests)
        seen[start] = profiles(window_meta)
        folder = f"windows/{datetime.fromtimestamp(start, UTC).strftime('%Y%m%dT%H%M%SZ')}"
        written[folder] = window_meta
        measurements = compare.measure("skew", cfg.skew, training, seen[start], schema.label)
        if previous is not None:
            measurements += compare.measure("drift", cfg.drift, seen[previous], seen[start], schema.label)
        measured, counts = (), None
        if judge is not None:
            measured, counts, joined = judge.window(start, start + seconds, requests.scored, last)
            used |= joined
        windows.append(Window(start, start + seconds, requests.requests, requests.rows, measurements,
                              _anomalies(requests), previous, folder, measured, counts))
        previous = start
    findings = Findings(log_dir, training_examples, seconds, cfg.retrain_on, tuple(windows), len(paths),
                        tuple(read.damaged), tuple(read.unfinished), judge and judge.read(used, set(last)))
    return _written(out, findings, written, training, seen)


def batch(cfg: MonitorConfig, predictions: str, training_examples: str, out: str, labels: str = "",
          blessed: dict[str, float] | None = None, window: int | None = None) -> MonitorResult:
    """The quality of batch predictions (`predictions`: a predict step's output folder, or {YYYY}-{MM}-{DD} /
    {SPAN} folders) against `labels` (default `cfg.labels.source`), in windows by the time each folder was
    written, into the folder `out`. Their inputs were validated when the batch pipeline ingested them."""
    seconds = _seconds(cfg, window)
    schema, _ = _training(training_examples)
    task = task_of(schema)
    judge = _judge(cfg, schema, task, labels or cfg.labels.source, blessed or {})
    if judge is None:
        raise MonitorError("batch predictions are monitored for their quality: expected labels (monitor.labels.source "
                           "or --labels)")
    scored, files = batch_predictions.read(predictions, schema, task, judge.sliced, seconds)
    last = quality.last_predictions(scored)
    labels_lib.check_key_kind(judge.labels, list(last))
    windows, used = [], set()
    for start in sorted(scored):
        measured, counts, joined = judge.window(start, start + seconds, scored[start], last)
        used |= joined
        rows = len(scored[start].keys)
        windows.append(Window(start, start + seconds, rows, rows, quality=measured, labels=counts))
    findings = Findings(predictions, training_examples, seconds, cfg.retrain_on, tuple(windows), files,
                        labels=judge.read(used, set(last)), read="batch predictions")
    return _written(out, findings, {}, {}, {})


def _seconds(cfg: MonitorConfig, window: int | None) -> int:
    cfg.validate()
    seconds = window or cfg.window_seconds
    if not 1 <= seconds <= MonitorConfig.MAX_WINDOW_SECONDS:
        raise MonitorError(f"window: expected 1 to {MonitorConfig.MAX_WINDOW_SECONDS:,} seconds (100 years), got "
                           f"{seconds:,}")
    return seconds


def _written(out: str, findings: Findings, statistics: dict[str, DataMetadata], training: dict[str, Profile],
             seen: dict[int, dict[str, Profile]]) -> MonitorResult:
    """`out`, whole or not at all: findings.json, report.html and each window's statistics."""
    with io.staged_dir(out) as stage:
        for folder, window_meta in statistics.items():
            window_meta.write(f"{stage}/{folder}")
        io.write_text(f"{stage}/findings.json", findings.to_json() + "\n")
        io.write_text(f"{stage}/report.html", report.html(findings, training, seen))
    return MonitorResult(out, findings)


def scheduled(cfg: RunConfig, out: str, now: float) -> MonitorResult:
    """A scheduled run (the monitoring pipeline's): the last `monitor.lookback_windows` complete windows of the
    server's request logs (`serve.logging.dir`) against the examples the registry's production model was
    trained on, and with `monitor.labels` their quality against its blessed evaluation."""
    if not cfg.serve.logging.dir:
        raise MonitorError("serve.logging.dir: monitoring reads the server's request logs; expected their folder "
                           "(and serve.logging.sampling_rate > 0 on the server)")
    since, until = recent(cfg.monitor, now)
    served = production(cfg.model_home)
    return run(cfg.monitor, cfg.serve.logging.dir, served.examples, out, since=since, until=until,
               blessed=served.metrics)


def blessed(model_home: str) -> dict[str, float]:
    """The served model's blessed evaluation (its overall metrics); none when the registry has no such model."""
    served = Registry(model_home).baseline()
    return dict(served.metrics) if served is not None else {}


def production(model_home: str) -> Baseline:
    """The served model: the registry's production version (the baseline), with the examples it was trained on
    and its blessed evaluation's metrics."""
    served = Registry(model_home).baseline()
    if served is None or not served.examples:
        raise MonitorError(f"{model_home}: no production model with its training examples in the registry; "
                           "monitoring compares served requests with the data the served model was trained on")
    return served



def recent(cfg: MonitorConfig, now: float) -> tuple[int, int]:
    """`since` and `until` for a scheduled run at `now`: the last `cfg.lookback_windows` complete windows
    (the window under way is read by the next run, once it is whole)."""
    until = int(now) // cfg.window_seconds * cfg.window_seconds
    return until - cfg.lookback_windows * cfg.window_seconds, until


def _training(examples: str) -> tuple[Schema, DataMetadata]:
    try:
        return Schema.read(examples), DataMetadata.read(examples)
    except TfpipeError as e:
        raise MonitorError(f"training examples: {e}") from None


def _check_thresholds(cfg: MonitorConfig, schema: Schema) -> None:
    known = {f.name for f in schema.features}
    for side in ("skew", "drift"):
        unknown = sorted(set(getattr(cfg, side).features) - known)
        if unknown:
            raise MonitorError(f"monitor.{side}.features.{unknown[0]}: no such feature in the training schema; "
                               f"features are {sorted(known)} (the label's name sets the predictions')")


def _judge(cfg: MonitorConfig, schema: Schema, task: Task, source: str, blessed: dict[str, float]
           ) -> quality.Judge | None:
    """The labels read and checked, with what their quality is judged by; None without labels."""
    if not source:
        if cfg.quality:
            raise MonitorError("monitor.quality: bounds need labels; expected monitor.labels.source or --labels")
        return None
    sliceable = {f.name: f for f in schema.inputs if f.type in ("int", "float", "string")}  # one value a row
    sliced = cfg.slices or tuple(name for name, f in sliceable.items() if f.type == "string")
    for name in sliced:
        if name not in sliceable:
            raise MonitorError(f"monitor.slices: {name!r} is not a feature that slices; expected one of the numbers "
                               f"or strings {sorted(sliceable)}")
    judge = quality.Judge(schema, task, labels_lib.read(cfg.labels, schema, task, source), dict(cfg.quality),
                          blessed, cfg.min_labels, cfg.max_label_delay_seconds, sliced)
    judge.check()
    return judge


def _anomalies(requests: Traffic) -> tuple[Anomaly, ...]:
    counted: Counter = requests.anomalies
    return tuple(Anomaly(kind, feature, n, requests.messages[(kind, feature)])
                 for (kind, feature), n in sorted(counted.items()))
