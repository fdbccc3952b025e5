"""Vertex Model Monitoring for an endpoint: the real GAPIC clients' requests (REST transport), as a stand-in Vertex
API on 127.0.0.1 receives them."""

import json

import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1 as v1

from components.common.config import DeployConfig, DriftThresholds, MonitorConfig, RequestLogConfig
from components.serve import vertex_monitoring
from tests.conftest import http_server

PARENT = "projects/acme/locations/europe-west4"
ENDPOINT = f"{PARENT}/endpoints/5"
JOBS = f"/v1/{PARENT}/modelDeploymentMonitoringJobs"
CFG = DeployConfig(target="vertex", project="acme", region="europe-west4", storage_uri="gs://m/serving/churn")
MONITOR = MonitorConfig(skew=DriftThresholds(default=0.2, features={"charges": 0.05, "churned": 0.3}),
                        drift=DriftThresholds(default=0.1), window_seconds=5400, vertex_job=True,
                        alert_emails=("ml-oncall@example.com",))
LOGGING = RequestLogConfig(sampling_rate=0.25)


class Vertex:
    """An endpoint with two deployed models, and the monitoring jobs created; every request recorded."""

    def __init__(self):
        self.jobs: list[dict] = []
        self.seen: list[tuple[str, str, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        self.seen.append((request.method, request.path, body))
        if request.path == f"/v1/{ENDPOINT}":
            deployed = [{"id": "111", "model": f"{PARENT}/models/churn@1"},
                        {"id": "222", "model": f"{PARENT}/models/churn@2"}]
            return web.json_response({"name": ENDPOINT, "deployedModels": deployed})
        if request.path == JOBS and request.method == "GET":
            return web.json_response({"modelDeploymentMonitoringJobs": self.jobs})
        if request.path == JOBS and request.method == "POST":
            self.jobs.append({**body, "name": f"{PARENT}/modelDeploymentMonitoringJobs/9"})
            return web.json_response(self.jobs[-1])
        if request.method == "PATCH":
            return web.json_response({"name": f"{PARENT}/operations/1", "done": True, "response": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.v1.ModelDeploymentMonitoringJob", **body}})
        return web.json_response({"error": {"code": 404, "message": "stand-in", "status": "NOT_FOUND"}}, status=404)


@pytest.fixture
def vertex():
    stand_in = Vertex()
    with http_server(stand_in.handle) as url:
        options = {"credentials": AnonymousCredentials(), "transport": "rest", "client_options": {"api_endpoint": url}}
        yield stand_in, {"endpoints": v1.EndpointServiceClient(**options), "jobs": v1.JobServiceClient(**options)}


def test_an_endpoint_gets_one_monitoring_job_for_its_models_and_later_deploys_update_it(vertex):
    stand_in, clients = vertex
    watched = vertex_monitoring.watch(CFG, MONITOR, LOGGING, ENDPOINT, "gs://runs/churn/ingest/examples", "churned",
                                      "churn", **clients)
    assert watched == f"{PARENT}/modelDeploymentMonitoringJobs/9"
    [(_, _, created)] = [call for call in stand_in.seen if call[0] == "POST"]
    assert created["displayName"] == "churn-monitoring"
    assert created["endpoint"] == ENDPOINT
    assert created["labels"] == {"managed-by": "tfpipe"}
    objectives = created["modelDeploymentMonitoringObjectiveConfigs"]
    assert [o["deployedModelId"] for o in objectives] == ["111", "222"]
    objective = objectives[0]["objectiveConfig"]
    assert objective["trainingDataset"] == {"gcsSource": {"uris": ["gs://runs/churn/ingest/examples/train/*.tfrecord.gz"]},
                                            "dataFormat": "tf-record", "targetField": "churned"}
    skew = objective["trainingPredictionSkewDetectionConfig"]
    assert skew["skewThresholds"] == {"charges": {"value": 0.05}}  # the label's threshold has no Vertex counterpart
    assert skew["defaultSkewThreshold"] == {"value": 0.2}
    assert objective["predictionDriftDetectionConfig"]["defaultDriftThreshold"] == {"value": 0.1}
    assert created["modelDeploymentMonitoringScheduleConfig"]["monitorInterval"] == "7200s"  # 1.5 h, up to whole hours
    assert created["loggingSamplingStrategy"] == {"randomSampleConfig": {"sampleRate": 0.25}}
    alerts = created["modelMonitoringAlertConfig"]
    assert alerts["emailAlertConfig"]["userEmails"] == ["ml-oncall@example.com"]
    assert alerts["enableLogging"]

    stand_in.seen.clear()
    assert vertex_monitoring.watch(CFG, MONITOR, LOGGING, ENDPOINT, "gs://runs/churn/ingest/examples", "churned",
                                   "churn", **clients) == watched
    [(method, path, updated)] = [call for call in stand_in.seen if call[0] not in ("GET",)]
    assert (method, path) == ("PATCH", f"/v1/{watched}")
    assert len(updated["modelDeploymentMonitoringObjectiveConfigs"]) == 2


@pytest.mark.parametrize(("logging", "examples", "message"), [
    (RequestLogConfig(), "gs://runs/examples", "expected serve.logging.sampling_rate > 0"),
    (LOGGING, "/runs/examples", "Vertex reads the training data from gs://; the examples are at /runs/examples"),
])
def test_a_job_vertex_could_not_run_is_refused_before_a_request(logging, examples, message):
    endpoint = v1.Endpoint(name=ENDPOINT, deployed_models=[v1.DeployedModel(id="111")])
    with pytest.raises(vertex_monitoring.VertexMonitoringError, match=message):
        vertex_monitoring.job(MONITOR, logging, endpoint, examples, "churned", "churn")
    with pytest.raises(vertex_monitoring.VertexMonitoringError, match="no model is deployed"):
        vertex_monitoring.job(MONITOR, LOGGING, v1.Endpoint(name=ENDPOINT), "gs://runs/examples", "churned", "churn")
