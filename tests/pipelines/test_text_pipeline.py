"""The text classifier example (its own TextVectorization) from ingest to serving, on the generated reviews."""

import json

import numpy as np
import pytest

from components.common import config as config_lib, reader
from components.common.config import ServeConfig
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import task_of
from components.data import reviews
from components.serve.client import GrpcClient, RestClient
from components.serve.server import running
from pipelines import summary
from pipelines.targets import local
from tests.conftest import ROOT


@pytest.mark.slow
def test_the_text_classifier_through_the_whole_dag_tuned_served_on_both_protocols(tmp_path):
    source = reviews.write(tmp_path / "reviews.csv")
    cfg = config_lib.load(ROOT / "pipelines/configs/reviews_text.yaml", [
        f"ingest.source={source}", f"runs_root={tmp_path}/runs", "train.epochs=5", "deploy.infra_check=false",
        "tune.space={model.params.ngrams: {values: [1, 2]}}"])
    run_dir = local.run(cfg)
    outputs = summary.outputs_of(run_dir)
    schema = Schema.read(str(outputs.examples))
    assert schema.feature("review").type == "text" and schema.feature("product").type == "string"
    assert json.loads((outputs.model / "training.json").read_text())["params"]["ngrams"] in (1, 2)
    evaluation = json.loads((run_dir / "evaluate" / "evaluation" / "metrics.json").read_text())
    assert evaluation["overall"]["accuracy"] > 0.85

    features, _ = next(iter(reader.dataset(str(outputs.examples), "test", schema, task_of(schema), 8,
                                           training=False)))
    model = load_model(str(outputs.model), schema)
    assert model.get_layer("vectorize").get_config()["output_mode"] == "tf_idf"
    expected = model.predict(features, verbose=0)
    columns = {k: v.numpy().reshape(-1) for k, v in features.items()}
    rows = [{k: (v[i].decode() if isinstance(v[i], bytes) else v[i].item()) for k, v in columns.items()}
            for i in range(len(expected))]
    home = tmp_path / "runs" / "serving" / "reviews_text"
    with running(ServeConfig(model_base=str(home), rest_port=0, grpc_port=0)) as server:
        rest = RestClient(server.rest_url, "reviews_text")
        grpc_client = GrpcClient(server.grpc_target, "reviews_text")
        try:
            by_rest = rest.predict(instances=rows)
            by_grpc = grpc_client.predict({k: v.astype(object) if v.dtype.kind in "SO" else v
                                           for k, v in columns.items()})
        finally:
            rest.close()
            grpc_client.close()
    np.testing.assert_allclose([p["probabilities"] for p in by_rest["predictions"]], expected, atol=1e-5)
    np.testing.assert_allclose(by_grpc["probabilities"], expected, atol=1e-5)
    assert (run_dir / "whatif" / "analysis" / "report.html").exists()
