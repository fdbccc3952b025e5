"""The monitoring pipeline on this machine (kfp.local): a served model's logged requests, read against the data the
registry's production model was trained on, and the training run it starts when the predictions drift."""

import shutil
from pathlib import Path

import pytest

from components.common.config import (
    DeployConfig,
    ExportConfig,
    IngestConfig,
    MonitorConfig,
    RequestLogConfig,
    RunConfig,
    ServeConfig,
    TensorBoardConfig,
    TrainConfig,
)
from components.common.registry import Registry
from components.monitor import Findings
from pipelines import summary
from pipelines.records import MonitorRecord, RetrainRecord, TrainRecord, ValidateRecord
from pipelines.targets import local
from tests.components.monitor.test_monitor import WINDOW, log_traffic, next_window


@pytest.mark.slow
def test_drifted_predictions_start_a_training_run(tmp_path, penguins_home, penguins_examples):
    home = tmp_path / "serving" / "penguins"
    shutil.copytree(penguins_home, home)  # the retraining exports beside it: the shared fixture stays as it is
    Registry(str(home)).promote(1, "production", force=True)
    logs = tmp_path / "logs"
    log_traffic(home, penguins_examples, logs)
    next_window()  # the shifted window is complete: a scheduled run reads it
    cfg = RunConfig(
        name="penguins", runs_root=str(tmp_path / "runs"),
        ingest=IngestConfig(source=str(Path(penguins_examples).parent / "penguins.csv"), label="species"),
        train=TrainConfig(epochs=1, tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0)),
        export=ExportConfig(base=str(home.parent), model_name="penguins"),
        serve=ServeConfig(logging=RequestLogConfig(sampling_rate=1.0, dir=str(logs))),
        deploy=DeployConfig(infra_check=False),
        monitor=MonitorConfig(window_seconds=WINDOW, lookback_windows=100, retrain_on=("drift",)))

    run_dir = local.run(cfg, pipeline="monitoring")

    assert run_dir.name.startswith("tfpipe-penguins-monitoring-")
    monitored = MonitorRecord.read(run_dir)
    assert monitored.crossed
    assert monitored.retrain
    assert monitored.requests > 0
    assert monitored.training == str(penguins_home / "1" / "assets.extra")  # production's statistics, kept with it
    findings = Findings.from_json((run_dir / "monitor" / "findings" / "findings.json").read_text())
    assert [w.crossed("skew") == () for w in findings.windows] == [True, False]
    assert "predictions (species)" in {m.subject for m in findings.windows[-1].crossed("drift")}
    started = Path(RetrainRecord.read(run_dir).started)
    assert started.parent == Path(cfg.runs_root).resolve()
    assert started.name.startswith("tfpipe-penguins-2")
    assert ValidateRecord.read(started).validated
    assert TrainRecord.read(started) is not None
    printed = "\n".join(summary.monitoring_lines(run_dir))
    assert f"retrained {started}" in printed
    assert "THRESHOLD CROSSED (retrain)" in printed


def test_without_request_logs_monitoring_says_what_to_set(tmp_path):
    from components.monitor import MonitorError, scheduled

    with pytest.raises(MonitorError, match=r"serve\.logging\.dir: monitoring reads the server's request logs"):
        scheduled(RunConfig(runs_root=str(tmp_path)), str(tmp_path / "out"), 0)
    cfg = RunConfig(runs_root=str(tmp_path), serve=ServeConfig(logging=RequestLogConfig(dir=str(tmp_path))))
    with pytest.raises(MonitorError, match="no production model with its training examples in the registry"):
        scheduled(cfg, str(tmp_path / "out"), 0)
