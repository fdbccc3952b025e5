"""The batch scoring pipeline (`--pipeline batch`): compiled like the others, and run through kfp.local on churn
spans: a good day is ingested whole, validated against production's training data and scored, keyed by customer;
a shifted day stops at validate, before anything is scored."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import yaml

from components.common import config as config_lib
from components.common.config import ExportConfig, ModelConfig, TensorBoardConfig, TrainConfig
from components.common.registry import Registry
from components.data import RETRAINING_DAYS, write_retraining
from components.export import run as export
from components.ingest import run as ingest
from components.train import run as train
from pipelines import summary
from pipelines.batch import WHOLE, scoring
from pipelines.cli import main
from pipelines.records import IngestRecord, PredictRecord, ValidateRecord
from pipelines.targets import local
from tests.conftest import ROOT

CONFIG = ROOT / "pipelines/configs/retraining.yaml"


def test_the_batch_pipeline_compiles_with_the_span_whole_and_the_key_kept(tmp_path, capsys):
    out = tmp_path / "batch.yaml"
    assert main(["compile", "--config", str(CONFIG), "--pipeline", "batch", "--out", str(out)]) == 0
    assert "tfpipe-churn-batch" in capsys.readouterr().out
    compiled = yaml.safe_load(out.read_text())
    assert {"comp-ingest", "comp-validate", "comp-predict", "comp-summary"} <= set(compiled["components"])
    cfg = scoring(config_lib.load(CONFIG))
    assert cfg.ingest.split == WHOLE
    assert "customer_id" not in cfg.ingest.drop
    assert "empty_split" not in cfg.validation.fail
    assert "drift" in cfg.validation.fail
    dataflow = scoring(config_lib.load(CONFIG, ["beam.runner=DataflowRunner", "beam.project=acme",
                                                "beam.temp_location=gs://acme/tmp", "pipeline.base_image=tfpipe:7"]))
    assert dataflow.beam.sdk_container_image == "tfpipe:7"


def production(tmp_path, data) -> str:
    """Day 1 ingested, trained and exported as the registry's production version, as a training run leaves it."""
    cfg = config_lib.load(CONFIG, [f"ingest.source={data}/{RETRAINING_DAYS[0]}/churn.csv"])
    ingest(cfg.ingest, str(tmp_path / "day1"))
    train(TrainConfig(epochs=1, model=ModelConfig(hidden_units=(8,), embedding_dim=0),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)),
          str(tmp_path / "day1"), str(tmp_path / "model"))
    home = tmp_path / "runs" / "serving" / "churn"
    export(ExportConfig(model_name="churn"), str(tmp_path / "model"), str(tmp_path / "day1"), str(home))
    Registry(str(home)).promote(1, "production", force=True)
    return str(home)


def test_a_span_is_ingested_whole_validated_and_scored_by_production_and_a_shifted_one_is_stopped(tmp_path,
                                                                                                  capsys):
    data = write_retraining(tmp_path / "data")
    home = production(tmp_path, data)

    def day(n: int):
        before = local.runs(tmp_path / "runs", "tfpipe-churn-batch")
        assert main(["run", "--config", str(CONFIG), "--pipeline", "batch",
                     "--set", f"ingest.source={data}/{{YYYY}}-{{MM}}-{{DD}}/churn.csv",
                     "--set", f"runs_root={tmp_path}/runs", "--set", f"ingest.source_date={RETRAINING_DAYS[n - 1]}",
                     "--set", "predict.keep=[plan]"]) == 0
        [made] = local.runs(tmp_path / "runs", "tfpipe-churn-batch") - before
        return made

    second = day(2)
    assert "2,000 rows scored, 0 rejected" in capsys.readouterr().out
    ingested, scored = IngestRecord.read(second), PredictRecord.read(second)
    assert ingested.splits == {"train": 2000, "eval": 0, "test": 0}
    assert ValidateRecord.read(second).baseline == f"{home}/1/assets.extra"  # production's training statistics
    assert (scored.rows, scored.rejected, scored.version, scored.alias) == (2000, 0, 1, "production")
    assert scored.model == f"{home}/1"
    table = pq.read_table(scored.out).to_pydict()
    with open(f"{data}/{RETRAINING_DAYS[1]}/churn.csv") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    assert sorted(table["customer_id"]) == sorted(rows)
    assert all(rows[k]["plan"] == plan for k, plan in zip(table["customer_id"], table["plan"], strict=True))
    assert set(table["predicted_class"]) <= {"0", "1"}
    assert len(table["probabilities"][0]) == 2
    lines = summary.batch_lines(second)
    assert any("2,000 rows scored, 0 rejected" in line and "(production)" in line for line in lines), lines

    third = day(3)
    assert not ValidateRecord.read(third).validated
    assert PredictRecord.read(third) is None
    assert not (third / "predict").exists()
    assert any(line.strip().startswith("stopped   before scoring") for line in summary.batch_lines(third))
