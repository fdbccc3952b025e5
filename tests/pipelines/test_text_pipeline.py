"""The text classifier example (its own TextVectorization) from ingest to serving, on the generated reviews."""

import json

import pytest

from components.common import config as config_lib
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.data import reviews
from pipelines import summary
from pipelines.targets import local
from tests.conftest import ROOT
from tests.pages import assert_whatif_report_shows
from tests.served import assert_served_as_keras


@pytest.mark.slow
def test_the_text_classifier_through_the_whole_dag_tuned_served_on_both_protocols(tmp_path):
    source = reviews.write(tmp_path / "reviews.csv")
    cfg = config_lib.load(ROOT / "pipelines/configs/reviews_text.yaml", [
        f"ingest.source={source}", f"runs_root={tmp_path}/runs", "train.epochs=5", "deploy.infra_check=false",
        "tune.space={model.params.ngrams: {values: [1, 2]}}"])
    run_dir = local.run(cfg)
    outputs = summary.outputs_of(run_dir)
    schema = Schema.read(str(outputs.examples))
    assert schema.feature("review").type == "text"
    assert schema.feature("product").type == "string"
    assert json.loads((outputs.model / "training.json").read_text())["params"]["ngrams"] in (1, 2)
    evaluation = json.loads((run_dir / "evaluate" / "evaluation" / "metrics.json").read_text())
    assert evaluation["overall"]["accuracy"] > 0.85

    model = load_model(str(outputs.model), schema)
    assert model.get_layer("vectorize").get_config()["output_mode"] == "tf_idf"
    assert_served_as_keras(str(tmp_path / "runs" / "serving" / "reviews_text"), "reviews_text",
                           str(outputs.examples), str(outputs.model))
    assert_whatif_report_shows(run_dir / "whatif" / "analysis")
