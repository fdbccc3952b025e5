"""The run summary from the records a run's tasks left, without running a pipeline."""

import json
from pathlib import Path

from components.serve.deployment import Deployment
from pipelines import summary
from pipelines.records import (
    EvaluateRecord,
    ExportRecord,
    IngestRecord,
    MonitorRecord,
    RetrainRecord,
    ServeRecord,
    StepRecord,
    TrainRecord,
    WhatIfRecord,
)


def leave(run_dir, record: StepRecord) -> None:
    """What kfp.local leaves for a task whose op recorded `record`, numbers as doubles as KFP keeps them."""
    (run_dir / record.TASK).mkdir(parents=True)
    metadata = json.loads(json.dumps(record.to_json()), parse_int=float)
    (run_dir / record.TASK / "executor_output.json").write_text(json.dumps(
        {"artifacts": {record.ARTIFACT: {"artifacts": [{"name": record.ARTIFACT, "metadata": metadata}]}}}))


def test_a_blessed_run(tmp_path):
    run = tmp_path / "tfpipe-digits-2026"
    job = "https://console.cloud.google.com/dataflow/jobs/us-central1/2026-12-01_03_00_00-17?project=acme"
    for record in (IngestRecord(1.0, 1797, 3, {"train": 1431, "eval": 180, "test": 186}, "2026-12-01_03_00_00-17",
                                job),
                   TrainRecord(6.0, {"loss": 0.1}),
                   EvaluateRecord(2.0, True, "blessed", {"accuracy": 0.98, "count": 186}, "accuracy 0.9800", "/e",
                                  "/m"),
                   WhatIfRecord(1.0, "production, version 1"),
                   ExportRecord(1.0, "/serving/digits/1", 1, ("serving_default",)),
                   ServeRecord(1.0, True)):
        leave(run, record)
    (run / "serve" / "deployment").mkdir()
    (run / "serve" / "deployment" / "deploy.json").write_text(Deployment(
        True, "local", path="/serving/digits/1", serve="tfpipe serve --model-base /serving/digits").to_json())
    lines = "\n".join(summary.lines(run))
    assert "  train        6.0 s  (50%)" in lines
    assert "  whatif       1.0 s  (8%)" in lines
    assert "rows      1,797 (train 1,431, eval 180, test 186), 3 rejected" in lines
    assert f"dataflow  job 2026-12-01_03_00_00-17: {job}" in lines
    assert "test      accuracy 0.9800 (186 examples)" in lines
    assert "blessed   yes" in lines
    assert "compared  with the baseline (production, version 1): the what-if report opens with the verdict" in lines
    assert "serving   /serving/digits/1 (version 1)" in lines
    assert "model     /m/model.keras" in lines
    assert "deployed  /serving/digits/1; serve it with: tfpipe serve --model-base /serving/digits" in lines
    assert "what-if   tfpipe whatif serve --model-base /serving/digits --examples /e" in lines
    assert summary.outputs_of(run) == summary.RunOutputs(Path("/e"), Path("/m"), run / "evaluate" / "evaluation", 1)


def test_a_run_whose_ingest_and_train_were_cached_and_not_blessed(tmp_path):
    leave(tmp_path, EvaluateRecord(2.0, False, "not blessed", {"accuracy": 0.5, "count": 10}, "accuracy 0.5000",
                                   "/old/e", "/old/m"))
    lines = "\n".join(summary.lines(tmp_path))
    assert "ingest    cached" in lines
    assert "train     cached" in lines
    assert "blessed   NO" in lines
    assert "serving   not exported: the model was not blessed" in lines
    assert "/old/m/model.keras" in lines
    assert "cached" not in "\n".join(summary.lines(tmp_path, alone=True))


def test_a_monitoring_run_that_retrained(tmp_path):
    leave(tmp_path, MonitorRecord(3.0, True, True, 800, "THRESHOLD CROSSED (retrain): ...", "/runs/ingest/examples"))
    leave(tmp_path, RetrainRecord(41.0, "/runs/tfpipe-churn-2026-12-01", "/runs/monitor/findings"))
    lines = "\n".join(summary.monitoring_lines(tmp_path))
    assert "monitor      3.0 s  THRESHOLD CROSSED (retrain): ..." in lines
    assert "against   /runs/ingest/examples" in lines
    assert "retrained /runs/tfpipe-churn-2026-12-01 (41.0 s)" in lines
    assert f"findings  {tmp_path}/monitor/findings/findings.json" in lines


def test_a_monitoring_run_that_crossed_what_retrain_on_does_not_name(tmp_path):
    leave(tmp_path, MonitorRecord(3.0, True, False, 800, "THRESHOLD CROSSED: ...", "/e"))
    assert "  retrained no: monitor.retrain_on does not ask for it" in summary.monitoring_lines(tmp_path)
