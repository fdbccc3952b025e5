"""Multi-worker training as a TFJob: up to the requests sent to a stand-in Kubernetes API on 127.0.0.1, and run
here by the local operator, each replica with the TF_CONFIG the training operator sets."""

import json

import pytest
from aiohttp import web
from kubernetes import client as kube

from components.common.errors import TfpipeError
from components.train import TrainError, launcher, tfjob
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


def test_tf_config_is_the_training_operators():
    """kubeflow/training-operator's genTFConfigJSONStr: replica types lower-cased, headless service names on port
    2222, environment "cloud"."""
    job = tfjob.manifest("t", "ml", "i", 3, "gs://e", "gs://m", "1", "1G")
    configs = [json.loads(env["TF_CONFIG"]) for env in tfjob.tf_configs(job)]
    assert configs[2] == {"cluster": {"chief": ["t-chief-0.ml.svc:2222"],
                                      "worker": ["t-worker-0.ml.svc:2222", "t-worker-1.ml.svc:2222"]},
                          "task": {"type": "worker", "index": 1}, "environment": "cloud"}
    assert list(configs[2]) == ["cluster", "task", "environment"]
    assert [c["task"] for c in configs] == [{"type": "chief", "index": 0}, {"type": "worker", "index": 0},
                                            {"type": "worker", "index": 1}]
    assert [r.name for r in tfjob.replicas(job)] == ["t-chief-0", "t-worker-0", "t-worker-1"]


# Each replica writes the TF_CONFIG it was given to a file named by its task; `failing` (type-index) exits 3.
REPLICA = ("import json, os, sys; c = os.environ['TF_CONFIG']; t = json.loads(c)['task']; "
           "open(f\"{sys.argv[1]}/{t['type']}-{t['index']}.json\", 'w').write(c); "
           "sys.exit(3 if f\"{t['type']}-{t['index']}\" == sys.argv[2] else 0)")


def job_of_probes(folder, failing: str = "") -> dict:
    job = tfjob.manifest("t", "ml", "i", 3, "gs://e", "gs://m", "1", "1G")
    job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"] = [
        "python", "-c", REPLICA, str(folder), failing]
    return job


def test_the_local_operator_runs_each_replica_with_its_tf_config_on_127_0_0_1(tmp_path):
    assert launcher.run_tfjob(job_of_probes(tmp_path)) == "Succeeded"
    configs = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert sorted(configs) == ["chief-0", "worker-0", "worker-1"]
    cluster = configs["chief-0"]["cluster"]
    assert all(c["cluster"] == cluster and c["environment"] == "cloud" for c in configs.values())
    addresses = cluster["chief"] + cluster["worker"]
    assert len(cluster["worker"]) == 2
    assert len(set(addresses)) == 3
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    assert configs["worker-1"]["task"] == {"type": "worker", "index": 1}


def test_a_failed_replica_fails_the_job_by_name(tmp_path):
    with pytest.raises(TrainError, match=r"^TFJob ml/t failed: replica t-worker-1 exited with status 3$"):
        launcher.run_tfjob(job_of_probes(tmp_path, failing="worker-1"))


def test_the_operator_is_this_machine_only_when_the_step_says_so(monkeypatch):
    monkeypatch.delenv(tfjob.OPERATOR, raising=False)
    assert not tfjob.operated_here()
    monkeypatch.setenv(tfjob.OPERATOR, "local")
    assert tfjob.operated_here()
    monkeypatch.setenv(tfjob.OPERATOR, "kind")
    with pytest.raises(TfpipeError, match=r"^TFPIPE_TFJOB_OPERATOR: expected local .* got 'kind'$"):
        tfjob.operated_here()
