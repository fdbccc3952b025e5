"""Multi-worker training as a TFJob, up to the requests sent to a stand-in Kubernetes API on 127.0.0.1."""

import pytest
from aiohttp import web
from kubernetes import client as kube

from components.common.errors import TfpipeError
from components.train import TrainError, tfjob
from tests.conftest import http_server


def test_manifest():
    job = tfjob.manifest("t", "ml", "registry.example/tfpipe:1", 3, "gs://b/examples", "gs://b/model", "4", "16G")
    specs = job["spec"]["tfReplicaSpecs"]
    assert job["kind"] == "TFJob"
    assert specs["Chief"]["replicas"] == 1
    assert specs["Worker"]["replicas"] == 2
    container = specs["Worker"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "components", "train", "--config", "gs://b/model/config.json",
                                    "--examples", "gs://b/examples", "--out", "gs://b/model"]
    assert specs["Chief"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert "Worker" not in tfjob.manifest("t", "ml", "i", 1, "gs://e", "gs://m", "1", "1G")["spec"]["tfReplicaSpecs"]


@pytest.mark.parametrize("outcome", ["Succeeded", "Failed"])
def test_run_creates_the_job_and_waits(outcome):
    seen, polls = [], []

    async def api(request):
        seen.append((request.method, request.path))
        if request.method == "POST":
            return web.json_response(await request.json(), status=201)
        polls.append(1)
        conditions = [{"type": "Running", "status": "True"}]
        if len(polls) > 1:
            conditions.append({"type": outcome, "status": "True", "message": "worker-0 exited with code 1"})
        return web.json_response({"status": {"conditions": conditions}})

    job = tfjob.manifest("t1", "ml", "i", 2, "gs://e", "gs://m", "1", "1G")
    with http_server(api) as url:
        api_client = kube.ApiClient(kube.Configuration(host=url))
        if outcome == "Succeeded":
            assert tfjob.run(job, api_client, poll_seconds=0.05) == "Succeeded"
        else:
            with pytest.raises(TrainError, match="TFJob ml/t1 failed: worker-0 exited with code 1"):
                tfjob.run(job, api_client, poll_seconds=0.05)
    assert seen[0] == ("POST", "/apis/kubeflow.org/v1/namespaces/ml/tfjobs")
    assert seen[1] == ("GET", "/apis/kubeflow.org/v1/namespaces/ml/tfjobs/t1")
    assert len(polls) == 2


def test_local_paths_are_refused():
    from components.common.config import RunConfig, RuntimeConfig

    cfg = RunConfig(runtime=RuntimeConfig(workers=2, launcher="tfjob"))
    with pytest.raises(TfpipeError, match=r"^runtime.launcher=tfjob needs artifacts every pod can read \(gs://\), "
                                          r"got /local/examples and /local/model: give the pipeline a gs:// "
                                          r"pipeline root$"):
        tfjob.train(cfg, "/local/examples", "/local/model")
