"""Cluster targets up to the requests they send: KFP against a recording API server, Vertex objects offline."""

import json

import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from kfp import compiler

from components.common import config as config_lib
from components.common.errors import TfpipeError
from pipelines import cli, training, trigger
from pipelines.targets import cluster
from tests.conftest import ROOT, http_server


def test_cron_translation():
    assert cluster.cron_for("0 3 * * *", "kfp") == "0 0 3 * * *"
    assert cluster.cron_for("0 0 3 * * *", "kfp") == "0 0 3 * * *"
    assert cluster.cron_for("0 0 3 * * 1", "vertex") == "0 3 * * 1"
    assert cluster.cron_for("15 3 * * *", "vertex") == "15 3 * * *"
    with pytest.raises(cluster.CronError, match="no seconds field"):
        cluster.cron_for("30 0 3 * * *", "vertex")
    with pytest.raises(cluster.CronError, match="expected 5 fields"):
        cluster.cron_for("daily", "kfp")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml")
    path = tmp_path_factory.mktemp("package") / "tfpipe-digits.yaml"
    compiler.Compiler().compile(training.build(cfg), str(path))
    return str(path)


@pytest.fixture
def kfp_api():
    """A stand-in KFP API server on 127.0.0.1 that records requests and answers like KFP v2beta1."""
    seen = []

    async def answer(request):
        body = await request.json() if request.can_read_body else None
        seen.append((request.method, request.path, body))
        path = request.path
        if path.endswith("/experiments") and request.method == "GET":
            return web.json_response({"experiments": [{"experiment_id": "exp-1", "display_name": "tfpipe"}],
                                      "total_size": 1})
        if path.endswith("/experiments"):
            return web.json_response({"experiment_id": "exp-1", "display_name": body["display_name"]})
        if path.endswith("/recurringruns"):
            return web.json_response({**body, "recurring_run_id": "rec-1"})
        if path.endswith("/runs"):
            return web.json_response({**body, "run_id": "run-1"})
        return web.json_response({})

    with http_server(answer) as url:
        yield url, seen


def test_kfp_submit_and_schedule_requests(kfp_api, package):
    host, seen = kfp_api
    client = cluster.kfp_client(host, "team-ml")
    assert cluster.kfp_submit(client, package, "tfpipe-digits", "tfpipe", cache=True) == "run-1"
    [run] = [body for method, path, body in seen if method == "POST" and path.endswith("/runs")]
    assert run["display_name"] == "tfpipe-digits"
    assert run["experiment_id"] == "exp-1"
    assert run["pipeline_spec"]["pipelineInfo"]["name"] == "tfpipe-digits"
    assert "ingest_config" in run["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]
    assert cluster.kfp_schedule(client, package, "tfpipe-digits", "tfpipe", "0 3 * * *", cache=True) == "rec-1"
    [recurring] = [body for method, path, body in seen if path.endswith("/recurringruns")]
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["max_concurrency"] == "1" or recurring["max_concurrency"] == 1
    assert recurring["no_catchup"] is True
    assert recurring["pipeline_spec"]["pipelineInfo"]["name"] == "tfpipe-digits"


def test_vertex_job_and_schedule_objects(package):
    job = cluster.vertex_job(package, "tfpipe-digits", "acme", "europe-west4", "gs://acme-runs/tfpipe", cache=False,
                             credentials=AnonymousCredentials())
    resource = job._gca_resource
    assert resource.display_name == "tfpipe-digits"
    assert resource.labels["managed-by"] == "tfpipe"
    assert resource.runtime_config.gcs_output_directory == "gs://acme-runs/tfpipe"
    spec = json.loads(type(resource).to_json(resource))["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "tfpipe-digits"
    assert all(not t.get("cachingOptions", {}).get("enableCache") for t in spec["root"]["dag"]["tasks"].values())
    schedule = cluster.vertex_schedule(job, "tfpipe-digits nightly", credentials=AnonymousCredentials())
    assert schedule._gca_resource.display_name == "tfpipe-digits nightly"
    assert schedule._gca_resource.create_pipeline_job_request.parent == "projects/acme/locations/europe-west4"
    with pytest.raises(TfpipeError, match=r"^--pipeline-root '/tmp/runs': Vertex needs a gs:// folder for run "
                                          r"outputs$"):
        cluster.vertex_job(package, "x", "acme", "us-central1", "/tmp/runs", cache=True)


def test_the_monitoring_pipeline_is_scheduled_to_retrain_where_it_runs(kfp_api, capsys):
    host, seen = kfp_api
    assert cli.main(["schedule", "--config", str(ROOT / "pipelines/configs/retraining.yaml"), "--pipeline",
                     "monitoring", "--kfp-host", host, "--cron", "0 * * * *", "--set", "monitor.retrain_on=drift"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "tfpipe-churn-monitoring: recurring run rec-1"
    [recurring] = [body for method, path, body in seen if path.endswith("/recurringruns")]
    spec = recurring["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "tfpipe-churn-monitoring"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert cluster.Target.from_json(parameters["target"]["defaultValue"]) == cluster.Target(kfp_host=host)
    assert json.loads(parameters["config"]["defaultValue"])["monitor"]["retrain_on"] == ["drift"]
    assert set(spec["root"]["dag"]["tasks"]) == {"exit-handler-1", "summary"}


def test_a_retraining_started_from_a_step_submits_the_training_pipeline(kfp_api, tmp_path, monkeypatch):
    host, seen = kfp_api
    monkeypatch.setenv("_KFP_RUNTIME", "true")  # as kfp's executor leaves it for the step that starts the run
    cfg = config_lib.load(ROOT / "pipelines/configs/retraining.yaml")
    assert trigger.start_training(cfg, cluster.Target(kfp_host=host, experiment="nightly"), str(tmp_path)) == \
        "run run-1"
    [run] = [body for method, path, body in seen if method == "POST" and path.endswith("/runs")]
    assert run["display_name"] == "tfpipe-churn"
    assert run["pipeline_spec"]["pipelineInfo"]["name"] == "tfpipe-churn"
    assert run["experiment_id"] == "exp-1"
    assert (tmp_path / "started.json").exists()


def _tfpipe(*args: str, env: dict | None = None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([str(Path(sys.executable).with_name("tfpipe")), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_submit_and_schedule_to_vertex_without_credentials_say_so_in_one_line(tmp_path):
    # No credentials anywhere: no key file, an empty gcloud folder, and no metadata server (google-auth would
    # ask the GCE metadata address; NO_GCE_CHECK keeps every request of this test on this machine).
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "", "CLOUDSDK_CONFIG": str(tmp_path), "NO_GCE_CHECK": "True",
           "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
    target = ["--config", str(ROOT / "pipelines/configs/penguins.yaml"), "--vertex", "--project", "acme",
              "--pipeline-root", "gs://acme/runs"]
    for command in (["submit", *target], ["schedule", *target, "--cron", "0 3 * * *"]):
        done = _tfpipe(*command, env=env)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [
            "error: --vertex --project acme: no Google credentials (Application Default Credentials) on this "
            "machine; run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
            "service account's key file"]


def test_submit_to_a_kfp_host_that_does_not_answer_or_is_not_kfp_says_so_in_one_line():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = ["--config", str(ROOT / "pipelines/configs/penguins.yaml")]
    done = _tfpipe("submit", *config, "--kfp-host", closed)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: --kfp-host {closed}: no answer (")
    assert "Connection refused" in line

    async def not_kfp(request):
        return web.Response(status=404, text="<html>nothing here</html>")

    with http_server(not_kfp) as url:
        done = _tfpipe("submit", *config, "--kfp-host", url)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --kfp-host {url}: answered HTTP 404 Not Found where the KFP API should be "
        f"({url}/apis/v2beta1/healthz); check the URL"]
