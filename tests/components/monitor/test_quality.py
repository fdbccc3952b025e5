"""Model quality once the labels arrive, end to end on the churn days: day 1 trains, is blessed and becomes
production; days 2 and 3 are served with every request logged under its example key; their labels arrive a day
later. Day 3's customers churn by another rule while their features keep their distribution (a concept shift):
skew and drift stay quiet, quality crosses its bounds and asks for a training run."""

import csv
import dataclasses
import datetime
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components import monitor
from components.common.config import (
    DeployConfig,
    DriftThresholds,
    EvaluateConfig,
    ExportConfig,
    IngestConfig,
    LabelsConfig,
    ModelConfig,
    MonitorConfig,
    PredictConfig,
    RequestLogConfig,
    RunConfig,
    ServeConfig,
    TensorBoardConfig,
    Threshold,
    TrainConfig,
    ValidateConfig,
)
from components.common.registry import Registry
from components.data import churn
from components.evaluate import run as evaluate
from components.export import run as export
from components.ingest import run as ingest
from components.monitor import Findings, MonitorError
from components.predict import model as predict_model, run as predict
from components.serve.client import GrpcClient, RestClient, ServeError
from components.serve.server import running
from components.train import run as train
from pipelines import summary
from pipelines.records import MonitorRecord, RetrainRecord, TrainRecord
from pipelines.targets import local
from tests.components.monitor.test_monitor import example, next_window
from tests.components.serve.conftest import config
from tests.conftest import ROOT

TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
DAY1, DAY2, DAY3 = datetime.date(2026, 11, 1), datetime.date(2026, 11, 2), datetime.date(2026, 11, 3)
ROWS = 600  # served per day
WINDOW = 4  # seconds: each day's requests are sent within one window
CHUNK = 50
FEATURES = ("tenure_months", "monthly_charges", "support_calls", "plan", "region")
UNLABELLED, LATE, NEVER_SERVED = 20, 10, 5  # of day 2: keys left out of its labels, labels known too late, extra keys
QUALITY = MonitorConfig(window_seconds=WINDOW, retrain_on=("quality",), min_labels=100, slices=("plan",),
                        quality={"accuracy": Threshold(max_worse=0.1), "auc": Threshold(at_least=0.6)})


@dataclass(frozen=True)
class Served:
    root: Path
    examples: str
    home: str
    logs: str
    labels: str  # the labels' source: one file a day


def day_rows(day: datetime.date, concept: bool = False) -> list[dict]:
    header, body = churn.rows(day, concept=concept)
    return [dict(zip(header, row, strict=True)) for row in body[:ROWS]]


def send(rest: RestClient, grpc: GrpcClient, rows: list[dict]) -> None:
    """The rows in requests of CHUNK, their keys sent every way the server takes them: the instance's key field,
    the X-Example-Key header and gRPC metadata for predict; a feature of the examples, the header and the
    metadata for classify."""
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i:i + CHUNK]
        keys = [r["customer_id"] for r in chunk]
        features = [{k: r[k] for k in FEATURES} for r in chunk]
        way = i // CHUNK % 6
        if way == 0:
            rest.predict(instances=[{k: r[k] for k in ("customer_id", *FEATURES)} for r in chunk])
        elif way == 1:
            rest.predict(instances=features, example_keys=keys)
        elif way == 2:
            grpc.predict({k: np.array([f[k] for f in features], dtype=object if k in ("plan", "region") else
                                      np.float32 if k == "monthly_charges" else np.int64) for k in FEATURES},
                         example_keys=keys)
        elif way == 3:
            rest.classify([{"customer_id": r["customer_id"], **f} for r, f in zip(chunk, features, strict=True)])
        elif way == 4:
            rest.classify(features, example_keys=keys)
        else:
            grpc.classify([example(f) for f in features], example_keys=keys)


def write_labels(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "churned", "known_at"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    root = tmp_path_factory.mktemp("churn-quality")
    source = churn.write_day(root / "data", DAY1)
    examples, model, evaluation = (str(root / name) for name in ("examples", "model", "evaluation"))
    ingest(IngestConfig(source=str(source), label="churned", key="customer_id", drop=("customer_id",), shards=1),
           examples)
    train(TrainConfig(epochs=8, batch_size=64, learning_rate=0.01,
                      model=ModelConfig(hidden_units=(16,), embedding_dim=0, dropout=0.0),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)),
          examples, model)
    home = str(root / "serving" / "churn")
    evaluate(EvaluateConfig(thresholds={"auc": Threshold(at_least=0.6)}), model, examples, evaluation, home)
    export(ExportConfig(model_name="churn"), model, examples, home, evaluation=evaluation)
    Registry(home).promote(1, "production")

    day2, day3 = day_rows(DAY2), day_rows(DAY3, concept=True)
    logs = root / "logs"
    with running(config(home, logging=RequestLogConfig(sampling_rate=1.0, dir=str(logs)))) as server:
        rest, grpc = RestClient(server.rest_url, "churn"), GrpcClient(server.grpc_target, "churn")
        for rows in (day2, day3):
            next_window()
            started = time.time()
            send(rest, grpc, rows)
            if rows is day3:
                rest.predict(instances=[{k: r[k] for k in FEATURES} for r in day3[:3]])  # no key: counted
                rest.predict(instances=[{k: r[k] for k in ("customer_id", *FEATURES)} for r in day3[:1]])  # again
            assert time.time() // WINDOW == started // WINDOW, "a day's requests took longer than a window"
        rest.close()
        grpc.close()

    labels = root / "labels"
    churn.write_labels(labels, DAY3, concept=True, count=ROWS)
    late = int(time.time()) + 40 * 86400  # past monitor.max_label_delay_seconds (30 days) after its window
    write_labels(labels / "2026-11-03.csv",
                 [[r["customer_id"], r["churned"], "2026-11-03" if i >= LATE else late]
                  for i, r in enumerate(day2[:-UNLABELLED])] +
                 [[day2[-UNLABELLED - 1]["customer_id"], day2[-UNLABELLED - 1]["churned"], "2026-11-02"]] +
                 [[f"20261102-9999{i}", 0, "2026-11-03"] for i in range(NEVER_SERVED)])
    return Served(root, examples, home, str(logs), str(labels / "{YYYY}-{MM}-{DD}.csv"))


def logged_keys(logs: str) -> dict[str, list[str]]:
    """The example keys of every logged request, by the kind of log, read back as TF Serving's protos."""
    files = sorted(str(p) for p in Path(logs).glob("requests-*.tfrecord"))
    found: dict[str, list[str]] = {}
    for raw in tf.data.TFRecordDataset(files):
        record = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        kind = record.WhichOneof("log_type")
        if kind == "predict_log":
            inputs = record.predict_log.request.inputs
            keys = [k.decode() for k in tf.make_ndarray(inputs["customer_id"])] if "customer_id" in inputs else []
        else:
            examples = getattr(record, kind).request.input.example_list.examples
            keys = [e.features.feature["customer_id"].bytes_list.value[0].decode() for e in examples
                    if "customer_id" in e.features.feature]
        found.setdefault(kind, []).extend(keys)
    return found


def test_every_way_of_sending_keys_is_in_the_request_log(served):
    found = logged_keys(served.logs)
    sent = [r["customer_id"] for r in day_rows(DAY2) + day_rows(DAY3, concept=True)]
    assert sorted(found["predict_log"] + found["classify_log"]) == sorted(sent + sent[ROWS:ROWS + 1])
    assert len(found["classify_log"]) == 3 * 2 * 2 * CHUNK  # classify's three ways, twice a day, two days


def test_a_concept_shift_crosses_quality_while_skew_and_drift_stay_quiet(served, tmp_path):
    result = monitor.run(QUALITY, served.logs, served.examples, str(tmp_path / "out"), labels=served.labels,
                         blessed=monitor.blessed(served.home))
    day2, day3 = (w for w in result.findings.windows if w.requests)
    assert not [m.subject for w in (day2, day3) for m in w.measurements if m.crossed]

    blessed = monitor.blessed(served.home)
    overall2 = {q.metric: q for q in day2.quality if not q.feature}
    overall3 = {q.metric: q for q in day3.quality if not q.feature}
    assert set(overall2) == {"accuracy", "balanced_accuracy", "auc", "ece"}  # a binary label: calibration too
    assert overall2["accuracy"].blessed == blessed["accuracy"]
    assert overall2["accuracy"].verdict == overall2["auc"].verdict == "passed"
    assert abs(overall2["accuracy"].value - blessed["accuracy"]) < 0.1
    assert overall2["balanced_accuracy"].verdict == "unchecked"
    assert overall3["accuracy"].verdict == overall3["auc"].verdict == "crossed"
    assert overall3["auc"].value < 0.6
    assert overall3["accuracy"].value < blessed["accuracy"] - 0.1
    assert "(max_worse 0.1)" in overall3["accuracy"].reason

    c2, c3 = day2.labels, day3.labels
    assert (c2.predictions, c2.labelled, c2.unlabelled, c2.late, c2.no_key) == \
        (ROWS, ROWS - UNLABELLED - LATE, UNLABELLED, LATE, 0)
    assert (c3.predictions, c3.labelled, c3.no_key, c3.duplicated) == (ROWS + 4, ROWS, 3, 1)
    assert not c2.inconclusive
    assert not c3.inconclusive
    read = result.findings.labels
    assert (read.files, read.rows, read.duplicated) == (2, 2 * ROWS - UNLABELLED + 1 + NEVER_SERVED, 1)
    assert read.without_prediction == NEVER_SERVED
    assert read.examples_without_prediction[0] == "20261102-99990"
    plans = {q.slice for q in day3.quality if q.feature == "plan" and q.metric == "accuracy"}
    assert plans == set(churn.PLANS)

    assert result.crossed
    assert result.retrain
    headline = result.findings.headline()
    assert f"{day3.span}: quality accuracy (accuracy" in headline
    assert f"{day2.span}: quality" not in headline
    assert monitor.Findings.from_json((tmp_path / "out" / "findings.json").read_text()) == result.findings
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Quality once labels arrived" in page
    assert "CROSSED" in page
    assert "20261102-99990" in page


def test_what_retrain_on_asks_for_and_too_few_labels(served, tmp_path):
    def run(**changes):
        return monitor.run(dataclasses.replace(QUALITY, **changes), served.logs, served.examples,
                           str(tmp_path / "out"), labels=served.labels, blessed=monitor.blessed(served.home))

    assert run(retrain_on=("skew", "quality")).retrain
    quiet = run(retrain_on=("skew", "drift"))
    assert quiet.crossed
    assert not quiet.retrain
    scarce = run(min_labels=ROWS + 1)
    assert not scarce.crossed, "a window with too few labels is never crossed"
    assert {q.verdict for w in scarce.findings.windows for q in w.quality if q.metric == "auc"} == {"inconclusive"}
    assert all(w.labels.inconclusive for w in scarce.findings.windows if w.requests)
    assert "quality inconclusive in 2 windows" in scarce.findings.headline()
    by_tenure = run(slices=("tenure_months",)).findings.windows[-1].quality
    quartiles = [q for q in by_tenure if q.feature == "tenure_months" and q.metric == "accuracy"]
    assert len(quartiles) == 4  # a number's quartiles over the window's labelled rows
    assert sum(q.labels for q in quartiles) == ROWS


def test_the_documented_command_exits_1_naming_the_metric_and_window(served, tmp_path):
    """pipelines/configs/retraining.yaml's command, its labels and model home set to this test's."""
    done = subprocess.run([TFPIPE, "monitor", "--config", str(ROOT / "pipelines/configs/retraining.yaml"),
                           "--set", f"export.base={Path(served.home).parent}", "--log", served.logs,
                           "--labels", served.labels, "--window", str(WINDOW), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "THRESHOLD CROSSED (retrain)" in done.stdout
    assert "quality accuracy (accuracy" in done.stdout
    assert "worse than the blessed" in done.stdout
    findings = Findings.from_json((tmp_path / "out" / "findings.json").read_text())
    assert {q.feature for w in findings.windows for q in w.quality} == {"", "plan", "region"}


def test_labels_the_monitor_cannot_trust_are_errors_naming_file_and_column(served, tmp_path):
    def labels(name: str, header: list[str], rows: list[list]) -> str:
        path = tmp_path / name
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        return str(path)

    def run(source: str):
        return monitor.run(QUALITY, served.logs, served.examples, str(tmp_path / "out"), labels=source,
                           blessed=monitor.blessed(served.home))

    keyless = labels("keyless.csv", ["id", "churned"], [["20261102-00000", 1]])
    with pytest.raises(MonitorError, match=r"keyless\.csv: no column 'customer_id'"):
        run(keyless)
    unknown = labels("unknown.csv", ["customer_id", "churned"], [["20261102-00000", 1], ["20261102-00001", "yes"]])
    with pytest.raises(MonitorError, match=r"unknown\.csv:3: column 'churned': label 'yes' is none of the model's "
                                           r"classes \['0', '1'\]"):
        run(unknown)
    numbers = labels("numbers.csv", ["customer_id", "churned"], [[7, 1], [8, 0]])
    with pytest.raises(MonitorError, match=r"numbers\.csv: column 'customer_id': its keys are integer .* the logged "
                                           r"predictions' keys are text"):
        run(numbers)
    done = subprocess.run([TFPIPE, "monitor", "--log", served.logs, "--examples", served.examples, "--labels",
                           unknown, "--out", str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        "unknown.csv:3: column 'churned': label 'yes' is none of the model's classes ['0', '1']")
    assert not (tmp_path / "cli").exists()


def test_the_server_refuses_keys_it_cannot_log(served):
    with running(config(served.home)) as server:
        rest = RestClient(server.rest_url, "churn")
        rows = [{k: r[k] for k in FEATURES} for r in day_rows(DAY2)[:2]]
        with pytest.raises(ServeError, match="X-Example-Key: 1 example keys for 2 examples"):
            rest.predict(instances=rows, example_keys=["only-one"])
        assert len(rest.predict(instances=rows, example_keys=["a", "b"])["predictions"]) == 2
        rest.close()


def test_batch_predictions_are_joined_to_their_labels_too(served, tmp_path):
    source = churn.write_day(tmp_path / "data", DAY3, concept=True)
    version = predict_model.resolve(served.home, alias="production")
    predict(PredictConfig(keep=("plan",)), version, str(tmp_path / "predictions"), source=str(source))

    result = monitor.batch(QUALITY, str(tmp_path / "predictions"), served.examples, str(tmp_path / "out"),
                           labels=served.labels, blessed=monitor.blessed(served.home))
    [window] = result.findings.windows
    assert (window.labels.predictions, window.labels.labelled, window.labels.unlabelled) == (2000, ROWS, 2000 - ROWS)
    overall = {q.metric: q for q in window.quality if not q.feature}
    assert overall["accuracy"].verdict == "crossed"
    assert {q.slice for q in window.quality if q.feature == "plan"} == set(churn.PLANS)
    assert result.findings.labels.without_prediction == ROWS - UNLABELLED + NEVER_SERVED  # day 2's labels
    assert result.retrain
    assert "2,000 requests in 1 windows (1 predictions files)" in result.findings.headline()
    assert monitor.Findings.from_json((tmp_path / "out" / "findings.json").read_text()) == result.findings


@pytest.mark.slow
def test_the_monitoring_pipeline_retrains_when_quality_crosses(served, tmp_path):
    home = tmp_path / "serving" / "churn"
    shutil.copytree(served.home, home)  # the retraining exports beside it: the shared fixture stays as it is
    source = churn.write_day(tmp_path / "data", DAY3, concept=True)
    next_window()  # day 3's window is complete: a scheduled run reads it
    cfg = RunConfig(
        name="churn", runs_root=str(tmp_path / "runs"),
        ingest=IngestConfig(source=str(source), label="churned", key="customer_id", drop=("customer_id",), shards=1),
        validation=ValidateConfig(drift=DriftThresholds(features={"churned": 0.5})),  # the customers changed
        train=TrainConfig(epochs=1, tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0)),
        export=ExportConfig(base=str(home.parent), model_name="churn"),
        serve=ServeConfig(logging=RequestLogConfig(sampling_rate=1.0, dir=served.logs)),
        deploy=DeployConfig(infra_check=False),
        monitor=dataclasses.replace(QUALITY, lookback_windows=1000, labels=LabelsConfig(source=served.labels)))

    run_dir = local.run(cfg, pipeline="monitoring")

    monitored = MonitorRecord.read(run_dir)
    assert monitored.crossed
    assert monitored.retrain
    assert "quality accuracy" in monitored.headline
    findings = Findings.from_json((run_dir / "monitor" / "findings" / "findings.json").read_text())
    assert not [m for w in findings.windows for m in w.measurements if m.crossed]
    started = Path(RetrainRecord.read(run_dir).started)
    assert started.name.startswith("tfpipe-churn-2")
    assert TrainRecord.read(started) is not None
    assert f"retrained {started}" in "\n".join(summary.monitoring_lines(run_dir))
