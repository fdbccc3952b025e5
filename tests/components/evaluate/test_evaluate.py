"""The evaluate step on trained models: metrics, slices, report, TensorBoard, the registry's baseline, bad input."""

import json
import shutil
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_accumulator as ea

from components.common.config import EvaluateConfig, ExportConfig, IngestConfig, SplitRatios, Threshold
from components.common.evaluation_records import Blessing, MetricsDocument
from components.common.model_loading import ModelError
from components.common.registry import RegistryError
from components.data import write_penguins
from components.evaluate import EvaluateError, artifacts, run
from components.export import run as export
from components.ingest import run as ingest
from tests.components.conftest import trained
from tests.pages import assert_evaluation_report_shows

PENGUIN_CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


def test_penguins_metrics_slices_report_and_logs(tmp_path, penguins_model, penguins_examples):
    cfg = EvaluateConfig(thresholds={"accuracy": Threshold(at_least=0.6, max_worse=0.05)})
    result = run(cfg, penguins_model, penguins_examples, str(tmp_path / "eval"), str(tmp_path / "serving"))
    assert result.blessed
    document = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    overall = document["overall"]
    assert document["classes"] == PENGUIN_CLASSES
    assert overall["accuracy"] == result.metrics["accuracy"] > 0.6
    assert set(overall["per_class"]) == set(PENGUIN_CLASSES)
    assert set(overall["roc"]) == {*PENGUIN_CLASSES, "micro"}
    assert 0.5 < overall["auc"] <= 1
    assert sum(map(sum, overall["confusion_matrix"])) == overall["count"]

    by_feature = {}
    for row in document["slices"]:
        by_feature.setdefault(row["feature"], []).append(row)
    assert {r["slice"] for r in by_feature["island"]} == {"Biscoe", "Dream", "Torgersen"}
    assert 2 <= len(by_feature["bill_length_mm"]) <= 4
    assert by_feature["bill_length_mm"][0]["slice"].startswith("[")
    for rows in by_feature.values():
        assert sum(r["count"] for r in rows) == overall["count"]
        assert all("accuracy" in r["metrics"] for r in rows)

    blessing = json.loads((tmp_path / "eval" / "blessing.json").read_text())
    assert blessing["blessed"]
    assert "first run" in blessing["note"]
    assert [c["verdict"] for c in blessing["checks"]] == ["pass", "skipped"]
    shown = assert_evaluation_report_shows(tmp_path / "eval", "BLESSED")
    assert [(r["metric"], r["verdict"]) for r in shown["Checks"]] == [("accuracy", "pass"), ("accuracy", "skipped")]
    assert (tmp_path / "eval" / "report.html").read_text().count("<svg") == 4  # confusion, ROC, PR, reliability
    assert document["model"] == str(Path(penguins_model, "model.keras").resolve())

    logs = ea.EventAccumulator(str(tmp_path / "eval" / "logs" / "evaluation"), size_guidance={ea.TENSORS: 0})
    logs.Reload()
    assert {"accuracy", "loss", "auc"} <= set(logs.Tags()["tensors"])
    assert set(logs.PluginTagToContent("pr_curves")) == {f"{c}/pr_curves" for c in PENGUIN_CLASSES}

    text = (tmp_path / "eval" / "metrics.json").read_text()
    record = MetricsDocument.from_json(text)
    assert json.dumps(record.to_json(), indent=2) + "\n" == text  # read and written again byte for byte
    text = (tmp_path / "eval" / "blessing.json").read_text()
    assert json.dumps(Blessing.from_json(text).to_json(), indent=2) + "\n" == text
    assert artifacts.scalars(record)["accuracy"] == overall["accuracy"]
    assert artifacts.scalars(record)["f1/Gentoo"] == overall["per_class"]["Gentoo"]["f1"]
    fpr, tpr, thresholds = artifacts.roc_curve(record)
    assert fpr == overall["roc"]["micro"]["fpr"]
    assert len(fpr) == len(tpr) == len(thresholds) > 2


@pytest.mark.slow
def test_the_exported_blessed_model_is_the_next_baseline(tmp_path, tmp_path_factory, penguins_model,
                                                        penguins_examples):
    home = str(tmp_path / "serving" / "penguins")
    cfg = EvaluateConfig(thresholds={"accuracy": Threshold(max_worse=0.01)})
    assert run(cfg, penguins_model, penguins_examples, str(tmp_path / "first"), home).blessed
    export(ExportConfig(model_name="penguins"), penguins_model, penguins_examples, home, str(tmp_path / "first"))
    weak = trained(tmp_path_factory, penguins_examples, "subclass", 1)
    worse = run(cfg, weak, penguins_examples, str(tmp_path / "second"), home)
    assert not worse.blessed
    [check] = worse.checks
    assert check.verdict == "fail"
    assert check.baseline > check.value
    assert "vs baseline" in check.reason
    baseline = json.loads((tmp_path / "second" / "blessing.json").read_text())["baseline"]
    assert baseline["model"] == f"{home}/1/assets.extra/keras/model.keras"  # kept with the version
    assert (baseline["version"], baseline["why"]) == (1, "newest blessed")
    again = run(cfg, penguins_model, penguins_examples, str(tmp_path / "third"), home)
    assert again.blessed
    assert again.checks[0].reason.endswith("not worse by 0 (allowed 0.01)")


def test_named_slices_and_a_sequential_model(tmp_path, digits_model, digits_examples, penguins_model,
                                              penguins_examples):
    cfg = EvaluateConfig(slices=("island",))
    run(cfg, penguins_model, penguins_examples, str(tmp_path / "a"), str(tmp_path / "serving"))
    document = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert {r["feature"] for r in document["slices"]} == {"island"}
    with pytest.raises(EvaluateError, match="evaluate.slices: 'beak' is not a feature"):
        run(EvaluateConfig(slices=("beak",)), penguins_model, penguins_examples, str(tmp_path / "b"),
            str(tmp_path / "serving"))
    result = run(EvaluateConfig(), digits_model, digits_examples, str(tmp_path / "c"), str(tmp_path / "serving-d"))
    assert result.metrics["accuracy"] > 0.5
    # No thresholds: nothing checked, so not blessed (the pipeline exports nothing) and no baseline recorded.
    assert result.verdict == "unchecked"
    assert not result.blessed
    assert not (tmp_path / "serving-d").exists()
    assert json.loads((tmp_path / "c" / "blessing.json").read_text())["verdict"] == "unchecked"
    document = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert document["slices"] == []
    assert "reads only images (image)" in document["slices_note"]


def test_bad_inputs_name_what_was_expected(tmp_path, digits_model, penguins_model, penguins_examples):
    home = tmp_path / "serving"
    with pytest.raises(ModelError, match=r"nothing/model.keras: no model here; expected the train step"):
        run(EvaluateConfig(), str(tmp_path / "nothing"), penguins_examples, str(tmp_path / "o"), str(home))
    with pytest.raises(ModelError, match=r"takes features \['image'\]; the schema's inputs are \['bill_depth_mm'"):
        run(EvaluateConfig(), digits_model, penguins_examples, str(tmp_path / "o"), str(home))
    home.mkdir()
    (home / "registry.json").write_text("[1, 2]")
    with pytest.raises(RegistryError, match="registry.json"):
        run(EvaluateConfig(), penguins_model, penguins_examples, str(tmp_path / "o"), str(home))
    assert not (tmp_path / "o").exists(), "a failed evaluation left output behind"

    no_test = tmp_path / "no-test"
    ingest(IngestConfig(source=str(write_penguins(tmp_path / "p.csv")), label="species",
                        split=SplitRatios(train=0.9, eval=0.1, test=0.0)), str(no_test))
    with pytest.raises(EvaluateError, match="the test split is empty"):
        run(EvaluateConfig(), penguins_model, str(no_test), str(tmp_path / "o"), str(tmp_path / "other"))
    shutil.rmtree(no_test)
