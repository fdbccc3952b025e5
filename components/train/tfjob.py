"""Multi-worker training on a Kubeflow cluster: a TFJob of the component image, created and awaited.

The training operator starts a chief and `workers - 1` workers and sets
TF_CONFIG in each, so `python -m components train` picks
MultiWorkerMirroredStrategy; the chief writes the model to the output URI.
Inputs and outputs are URIs every pod can read (gs:// with a GCS artifact
store): the config is written beside the output first.
"""

from __future__ import annotations

import time

from components.common.errors import TfpipeError

TFJOB = {"group": "kubeflow.org", "version": "v1", "plural": "tfjobs"}


def manifest(name: str, namespace: str, image: str, workers: int, examples: str, out: str, cpu: str,
             memory: str) -> dict:
    replica = {
        "restartPolicy": "OnFailure",
        "template": {"spec": {
            "serviceAccountName": "tfpipe-runner",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": [{
                "name": "tensorflow", "image": image,
                "command": ["python", "-m", "components", "train", "--config", f"{out}/config.json",
                            "--examples", examples, "--out", out],
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }],
        }},
    }
    specs = {"Chief": {"replicas": 1, **replica}}
    if workers > 1:
        specs["Worker"] = {"replicas": workers - 1, **replica}
    return {"apiVersion": f"{TFJOB['group']}/{TFJOB['version']}", "kind": "TFJob",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "tfpipe"}},
            "spec": {"runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 2}, "tfReplicaSpecs": specs}}


def run(job: dict, api_client=None, timeout_seconds: float = 24 * 3600, poll_seconds: float = 15) -> str:
    """Creates the TFJob and waits for it to succeed; a failure or the timeout is a TrainError."""
    from kubernetes import client, config as kube_config

    from components.train.errors import TrainError

    if api_client is None:
        kube_config.load_incluster_config()  # the train op runs in a pod of the cluster
    api = client.CustomObjectsApi(api_client)
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    api.create_namespaced_custom_object(namespace=namespace, body=job, **TFJOB)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(namespace=namespace, name=name, **TFJOB).get("status", {})
        done = {c["type"]: c for c in status.get("conditions", []) if c.get("status") == "True"}
        if "Succeeded" in done:
            return "Succeeded"
        if "Failed" in done:
            raise TrainError(f"TFJob {namespace}/{name} failed: {done['Failed'].get('message', 'no message')}")
        time.sleep(poll_seconds)
    raise TrainError(f"TFJob {namespace}/{name} did not finish within {timeout_seconds:g} s")


def train(cfg, examples: str, out: str, api_client=None) -> dict[str, float]:
    """The train step as a TFJob: config beside the output, the job awaited, the chief's metrics read back."""
    from components.common import io

    if not (io.is_remote(examples) and io.is_remote(out)):
        raise TfpipeError(f"runtime.launcher=tfjob needs artifacts every pod can read (gs://), got {examples} "
                          f"and {out}: give the pipeline a gs:// pipeline root")
    cfg.write(out)
    name = f"tfpipe-{cfg.name}-train-{int(time.time())}"
    job = manifest(name, cfg.runtime.namespace, cfg.pipeline.base_image, cfg.runtime.workers, examples, out,
                   cfg.pipeline.cpu, cfg.pipeline.memory)
    run(job, api_client)
    return io.read_json(f"{out}/metrics.json")
