"""The serve step: the infra check passes and fails for the right reasons; each deploy target's request."""

import json
import re
import shutil
import time

import numpy as np
import pytest
import yaml
from aiohttp import web
from google.protobuf import text_format
from kubernetes import client as kube
from tensorflow_serving.config import model_server_config_pb2

from components.common.config import ConfigError, DeployConfig, ExportConfig, RequestLogConfig, ServeConfig
from components.common.errors import TfpipeError
from components.common.evaluation_records import Check
from components.common.registry import Registry
from components.export import run as export
from components.serve import deploy, infra, step
from components.serve.client import RestClient
from components.serve.deployment import Deployment
from components.serve.server import running
from tests.components.serve.conftest import config
from tests.conftest import http_server


def test_infra_check_passes_and_local_deploy_reaches_a_running_server(tmp_path, penguins_home, penguins_examples):
    served = tmp_path / "served"
    (served / "penguins").mkdir(parents=True)
    home = shutil.copytree(penguins_home, tmp_path / "home" / "penguins")  # the registry's aliases move
    with running(config(served / "penguins")) as server:
        record = step.run(DeployConfig(local_base=str(served)), str(home), 1, penguins_examples,
                          str(tmp_path / "out"), promote="auto")
        assert record == Deployment(True, "local", path=str(served / "penguins" / "1"),  # labels stay in the registry
                                    serve=f"tfpipe serve --model-base {served / 'penguins'} "
                                          f"--set serve.labels_file={home}/labels.json")
        assert Deployment.from_json((tmp_path / "out" / "deploy.json").read_text()) == record
        blessing = json.loads((tmp_path / "out" / "infra_blessing.json").read_text())
        assert blessing["blessed"]
        assert blessing["reason"] == "every canary answered as the SavedModel does"
        status, *canaries = [Check.from_dict(c, "infra_blessing.json") for c in blessing["checks"]]
        assert (status.metric, status.check, status.verdict, status.reason) == \
            ("status", "available", "pass", "version 1 AVAILABLE")
        assert len(canaries) == 2 * infra.CANARIES
        assert {(c.check, c.threshold, c.verdict) for c in canaries} == {("max_difference", 1e-05, "pass")}
        assert all(c.value <= c.threshold for c in canaries)
        assert set(blessing["latency_ms"]) == {"rest_p50", "rest_max", "grpc_p50", "grpc_max"}
        deadline = time.monotonic() + 30
        while not server.manager.ready and time.monotonic() < deadline:
            time.sleep(0.1)
        assert RestClient(server.rest_url, "penguins").status()["model_version_status"][0]["version"] == "1"
    assert Registry(str(home)).labels() == {"candidate": 1, "production": 1}


def test_a_version_that_answers_differently_is_not_deployed(tmp_path, penguins_home, penguins_examples,
                                                            other_penguins_model, monkeypatch):
    """Once the check has run version 1 in this process, its files are replaced by another model's export (the
    penguins model with moved weights): the server then answers as that model does, and the check, at its real
    tolerance, names the canary and how far the answer is."""
    home = shutil.copytree(penguins_home, tmp_path / "home" / "penguins")  # the registry's aliases would move
    other = tmp_path / "other" / "penguins"
    export(ExportConfig(model_name="penguins"), other_penguins_model, penguins_examples, str(other))
    expected = infra._expected

    def then_serve_the_other_model(version_dir, serialized):
        answers = expected(version_dir, serialized)
        shutil.rmtree(version_dir)
        shutil.copytree(other / "1", version_dir)
        return answers

    monkeypatch.setattr(infra, "_expected", then_serve_the_other_model)
    record = step.run(DeployConfig(local_base=str(tmp_path / "served")), str(home), 1, penguins_examples,
                      str(tmp_path / "out"))
    assert not record.deployed
    assert Deployment.from_json((tmp_path / "out" / "deploy.json").read_text()) == record
    assert not (tmp_path / "served").exists()
    assert "candidate" not in Registry(str(home)).labels(), "a version that failed its check was promoted"

    found = re.match(r"infra check failed: rest predict canary (\d+): max difference (\S+) \(tolerance 1e-05\); "
                     r"grpc classify canary \1: max difference \2 \(tolerance 1e-05\)", record.reason)
    assert found, record.reason
    canary = infra._canaries(penguins_examples)[int(found.group(1))]
    apart = np.max(np.abs(expected(other / "1", [canary])["probabilities"]
                          - expected(penguins_home / "1", [canary])["probabilities"]))
    assert apart > 0.01
    assert float(found.group(2)) == pytest.approx(apart, rel=0.06)  # the reason gives two significant digits


def test_a_version_that_does_not_load_is_not_deployed(tmp_path, penguins_home, penguins_examples):
    home = tmp_path / "penguins"
    shutil.copytree(penguins_home / "1", home / "1")
    for data in (home / "1" / "variables").glob("variables.data-*"):
        data.write_bytes(b"broken")
    result = infra.check(str(home), 1, penguins_examples, str(tmp_path / "out"))
    assert not result.blessed
    assert "the SavedModel does not load or run" in result.reason
    assert json.loads((tmp_path / "out" / "infra_blessing.json").read_text())["blessed"] is False


@pytest.fixture
def recording_cluster():
    """A stand-in Kubernetes API server on 127.0.0.1 that records requests and answers 201."""
    seen = []

    async def record(request):
        seen.append((request.method, request.path, await request.json()))
        return web.json_response(await request.json(), status=201)

    with http_server(record) as url:
        yield kube.ApiClient(kube.Configuration(host=url)), seen


def test_kserve_manifest_and_the_request_that_applies_it(tmp_path, penguins_home, recording_cluster):
    api_client, seen = recording_cluster
    cfg = DeployConfig(target="kserve", storage_uri="gs://models/serving/penguins", namespace="ml", apply=True)
    home = shutil.copytree(penguins_home, tmp_path / "serving" / "penguins")
    result = deploy.kserve(cfg, str(home), str(tmp_path), api_client=api_client)
    manifest = yaml.safe_load((tmp_path / "inferenceservice.yaml").read_text())
    assert result == Deployment(True, "kserve", manifest=str(tmp_path / "inferenceservice.yaml"), applied=True)
    assert manifest["kind"] == "InferenceService"
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["spec"]["predictor"]["model"]["modelFormat"] == {"name": "tensorflow"}
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == "gs://models/serving/penguins"
    # A rollout stops the pod as tfpipe serve stops: out of the endpoints first, then a drain within the grace.
    predictor, serve = manifest["spec"]["predictor"], ServeConfig()
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert predictor["model"]["readinessProbe"]["httpGet"]["path"] == "/v1/models/penguins"
    assert predictor["model"]["lifecycle"]["preStop"]["sleep"]["seconds"] >= serve.shutdown_delay_seconds
    assert predictor["terminationGracePeriodSeconds"] >= serve.shutdown_delay_seconds + serve.shutdown_grace_seconds
    [(method, path, body)] = seen
    assert (method, path) == ("POST", "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices")
    assert body == manifest


def served_config(home) -> model_server_config_pb2.ModelServerConfig:
    """The registry's TF Serving model config, parsed as TF Serving parses it."""
    return text_format.Parse((home / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())


def test_kserve_follows_the_registrys_labels_through_tf_servings_model_config(tmp_path, penguins_home):
    """The InferenceService's TF Serving reads the registry's model config (in the model base it serves) and
    polls it; every promotion and rollback renders it again, so the server's labels follow the registry's."""
    cfg = DeployConfig(target="kserve", storage_uri="gs://models/serving/penguins/")
    home = shutil.copytree(penguins_home, tmp_path / "serving" / "penguins")
    shutil.copytree(home / "1", home / "2")
    deploy.kserve(cfg, str(home), str(tmp_path / "out"))
    model = yaml.safe_load((tmp_path / "out" / "inferenceservice.yaml").read_text())["spec"]["predictor"]["model"]
    assert model["args"] == ["--model_config_file=gs://models/serving/penguins/models.config",
                             f"--model_config_file_poll_wait_seconds={deploy.LABELS_POLL_SECONDS}"]
    [config] = served_config(home).model_config_list.config
    assert (config.name, config.base_path, config.model_platform) == ("penguins", "gs://models/serving/penguins",
                                                                      "tensorflow")
    assert config.model_version_policy.WhichOneof("policy_choice") == "latest"  # no alias yet
    assert dict(config.version_labels) == {}

    registry = Registry(str(home))
    registry.register(2)
    registry.promote(1, "production", force=True)
    registry.promote(2, "canary", force=True)
    [config] = served_config(home).model_config_list.config
    assert list(config.model_version_policy.specific.versions) == [1, 2]
    assert dict(config.version_labels) == {"canary": 2, "production": 1}
    registry.promote(2, "production", force=True)
    registry.rollback("production")
    [config] = served_config(home).model_config_list.config
    assert dict(config.version_labels) == {"canary": 2, "production": 1}
    assert config.base_path == "gs://models/serving/penguins"  # kept through every change


def test_a_model_config_is_written_once_a_deployment_asks_with_the_aliases_there(tmp_path, penguins_home):
    home = shutil.copytree(penguins_home, tmp_path / "serving" / "penguins")
    Registry(str(home)).promote(1, "production", force=True)
    assert json.loads((home / "labels.json").read_text()) == {"production": 1}
    assert not (home / "models.config").exists()
    Registry(str(home)).follow_in_tf_serving("gs://models/serving/penguins")  # the aliases it has already
    [config] = served_config(home).model_config_list.config
    assert (dict(config.version_labels), list(config.model_version_policy.specific.versions)) == ({"production": 1},
                                                                                                  [1])


def test_vertex_requests():
    cfg = DeployConfig(target="vertex", project="acme", region="europe-west4", storage_uri="gs://m/serving/digits",
                       traffic_percent=10)
    upload, create_endpoint = deploy.vertex_requests(cfg, "digits", 7)
    assert upload.parent == "projects/acme/locations/europe-west4"
    assert upload.model.artifact_uri == "gs://m/serving/digits/7"
    assert upload.model.container_spec.image_uri.startswith("us-docker.pkg.dev/vertex-ai/prediction/tf2-")
    assert create_endpoint.endpoint.display_name == "digits"
    request = deploy.vertex_deploy_request(cfg, "projects/acme/locations/europe-west4/endpoints/5", "models/9")
    assert dict(request.traffic_split) == {"0": 10}
    assert request.deployed_model.model == "models/9"
    with pytest.raises(ConfigError, match="vertex needs deploy.project"):
        DeployConfig(target="vertex").validate()


def test_kserve_and_vertex_carry_request_logging(tmp_path, penguins_home, recording_cluster):
    api_client, seen = recording_cluster
    logging = RequestLogConfig(sampling_rate=0.2, kserve_url="http://broker.ml/logs", kserve_mode="request",
                               bigquery_destination="bq://acme.serving_logs")
    cfg = DeployConfig(target="kserve", storage_uri="gs://models/serving/penguins", apply=True)
    home = shutil.copytree(penguins_home, tmp_path / "serving" / "penguins")
    deploy.kserve(cfg, str(home), str(tmp_path), api_client=api_client, request_logging=logging)
    predictor = yaml.safe_load((tmp_path / "inferenceservice.yaml").read_text())["spec"]["predictor"]
    assert predictor["logger"] == {"mode": "request", "url": "http://broker.ml/logs"}
    assert seen[0][2]["spec"]["predictor"]["logger"] == predictor["logger"]
    assert "logger" not in deploy.kserve_manifest(cfg, "penguins")["spec"]["predictor"]

    cfg = DeployConfig(target="vertex", project="acme", storage_uri="gs://m/serving/digits")
    _, create_endpoint = deploy.vertex_requests(cfg, "digits", 7, logging)
    config = create_endpoint.endpoint.predict_request_response_logging_config
    assert config.enabled
    assert config.sampling_rate == pytest.approx(0.2)
    assert config.bigquery_destination.output_uri == "bq://acme.serving_logs"
    update = deploy.vertex_logging_update("projects/acme/locations/us-central1/endpoints/5", logging)
    assert list(update.update_mask.paths) == ["predict_request_response_logging_config"]
    assert update.endpoint.predict_request_response_logging_config == config
    _, plain = deploy.vertex_requests(cfg, "digits", 7)
    assert "predict_request_response_logging_config" not in plain.endpoint
    with pytest.raises(ConfigError, match="bigquery_destination: expected bq://"):
        RequestLogConfig(sampling_rate=0.2, bigquery_destination="acme.logs").validate()


def test_a_deployment_record_with_an_unknown_field_is_refused():
    with pytest.raises(TfpipeError, match="deploy.json: not a deployment record"):
        Deployment.from_json('{"deployed": true, "target": "local", "where": "/x"}')
