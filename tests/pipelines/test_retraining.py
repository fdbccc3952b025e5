"""Scheduled retraining end to end (pipelines/configs/retraining.yaml), three dated spans through the whole DAG.

Day 1 trains, is blessed and becomes production; day 2 (the same distribution) validates against day 1's
statistics, starts from production's weights and replaces it; day 3 (charges shifted, a new plan, a column
renamed) stops at validate, naming those features, and production stays on day 2's model, still answering.
"""

import json

import pytest

from components.common import config as config_lib
from components.common.config import ServeConfig
from components.common.registry import Registry
from components.data import RETRAINING_DAYS, write_retraining
from components.serve.client import RestClient
from components.serve.server import running
from pipelines.records import ValidateRecord
from pipelines.targets import local
from tests.conftest import ROOT


@pytest.mark.slow
def test_three_days_of_retraining(tmp_path):
    data = write_retraining(tmp_path / "data")
    home = tmp_path / "runs" / "serving" / "churn"

    def day(n: int):
        cfg = config_lib.load(ROOT / "pipelines/configs/retraining.yaml", [
            f"ingest.source={data}/{{YYYY}}-{{MM}}-{{DD}}/churn.csv", f"runs_root={tmp_path}/runs",
            f"ingest.source_date={RETRAINING_DAYS[n - 1].isoformat()}", "train.epochs=4",
            "evaluate.thresholds.auc.max_worse=0.1"])  # wiring, not learning: day 2 is blessed whatever its noise
        return local.run(cfg)

    first = day(1)
    assert Registry(str(home)).labels() == {"candidate": 1, "production": 1}
    assert "first run" in ValidateRecord.read(first).headline

    second = day(2)
    assert ValidateRecord.read(second).validated
    warm = json.loads((second / "train" / "model" / "training.json").read_text())["warm_start"]
    # Version 1's model and statistics, kept with it: no run folder is needed once a version is registered.
    assert warm["source"] == str((home / "1" / "assets.extra" / "keras" / "model.keras").resolve())
    assert warm["layers"] > 0
    assert Registry(str(home)).labels() == {"candidate": 2, "production": 2}
    assert Registry(str(home)).get(2).lineage.examples == str((home / "2" / "assets.extra").resolve())

    third = day(3)
    stopped = ValidateRecord.read(third)
    assert not stopped.validated
    assert stopped.baseline == str((home / "2" / "assets.extra").resolve())
    findings = json.loads((third / "validate" / "anomalies" / "anomalies.json").read_text())
    failing = {(f["feature"], f["kind"]) for f in findings["findings"] if f["verdict"] == "fail"}
    assert {("support_calls", "missing_feature"), ("monthly_charges", "drift"), ("plan", "drift")} <= failing
    assert {f["feature"] for f in findings["findings"] if f["verdict"] == "fail"} == \
        {"support_calls", "monthly_charges", "plan"}
    assert not (third / "train").exists(), "training ran on data that failed validation"
    assert Registry(str(home)).labels() == {"candidate": 2, "production": 2}

    serving = ServeConfig(model_base=str(home), rest_port=0, grpc_port=0, version_policy="all",
                          labels_file=str(home / "labels.json"))
    with running(serving) as server:
        row = {"tenure_months": 12, "monthly_charges": 70.0, "support_calls": 2, "plan": "basic", "region": "east"}
        answer = RestClient(server.rest_url, "churn").predict([row], label="production")
        assert len(answer["predictions"][0]["probabilities"]) == 2
