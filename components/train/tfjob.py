"""Multi-worker training on a Kubeflow cluster: a TFJob of the component image, created and awaited.

The training operator starts a chief and `workers - 1` workers and sets
TF_CONFIG in each, so `python -m components train` picks
MultiWorkerMirroredStrategy; the chief writes the model to the output URI.
Inputs and outputs are URIs every pod can read (gs:// with a GCS artifact
store): the config is written beside the output first.

The TF_CONFIG is the operator's (kubeflow/training-operator,
pkg/controller.v1/tensorflow/tensorflow.go: `genTFConfigJSONStr` and
`genClusterSpec`): `cluster` maps each replica type, lower-cased, to the
addresses of its replicas' headless services, `<job>-<type>-<index>.<namespace>.svc`
and the `tfjob-port` (2222 by default); `task` is the replica's type and index;
`environment` is "cloud". `tf_configs` writes it for a manifest.

Where `tfpipe run --package` rehearses a compiled pipeline, the train step's
container names the local operator in its environment (`TFPIPE_TFJOB_OPERATOR=local`,
set in the rehearsed file by `pipelines.targets.package`): the job `manifest`
makes then runs on that machine (`components.train.launcher.run_tfjob`), not
through the Kubernetes API.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from components.common.errors import TfpipeError

TFJOB = {"group": "kubeflow.org", "version": "v1", "plural": "tfjobs"}
PORT = 2222  # the operator's TFDefaultPort, where a replica's container names no `tfjob-port`
OPERATOR = "TFPIPE_TFJOB_OPERATOR"
LOCAL = "local"


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


def qualified_name(job: dict) -> str:
    return f"{job['metadata']['namespace']}/{job['metadata']['name']}"


@dataclass(frozen=True)
class Replica:
    """One pod of a TFJob: its replica type as TF_CONFIG names it (chief, worker) and its index."""

    job: str
    type: str
    index: int

    @property
    def name(self) -> str:
        """The pod's name, which is also its headless service's."""
        return f"{self.job}-{self.type}-{self.index}"


def replicas(job: dict) -> list[Replica]:
    """Every replica of the job, spec by spec in the manifest's order (the chief first)."""
    name = job["metadata"]["name"]
    return [Replica(name, kind.lower(), index) for kind, spec in job["spec"]["tfReplicaSpecs"].items()
            for index in range(spec["replicas"])]


def cluster(job: dict) -> dict[str, list[str]]:
    """The `cluster` of the operator's TF_CONFIG: each replica type's service addresses (keys sorted, as Go writes
    a map)."""
    addresses: dict[str, list[str]] = {}
    for replica in replicas(job):
        addresses.setdefault(replica.type, []).append(f"{replica.name}.{job['metadata']['namespace']}.svc:{PORT}")
    return dict(sorted(addresses.items()))


def tf_configs(job: dict, addresses: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Each replica's environment as the operator sets it, in `replicas` order; with `addresses`, each service
    address replaced by the one it maps to (a port on 127.0.0.1 where the job runs on one machine)."""
    spec = {kind: [(addresses or {}).get(a, a) for a in group] for kind, group in cluster(job).items()}
    return [{"TF_CONFIG": json.dumps({"cluster": spec, "task": {"type": replica.type, "index": replica.index},
                                      "environment": "cloud"})}
            for replica in replicas(job)]


def command(job: dict) -> list[str]:
    """The container command of the job's chief, which tfpipe's worker replicas share (`manifest`)."""
    return job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"]


def operated_here() -> bool:
    """Whether this step's TFJob runs on this machine (the rehearsal's local operator) rather than through the
    cluster's Kubernetes API."""
    operator = os.environ.get(OPERATOR, "")
    if operator not in ("", LOCAL):
        raise TfpipeError(f"{OPERATOR}: expected {LOCAL} (the job runs on this machine) or unset (on the cluster "
                          f"this step runs in), got {operator!r}")
    return operator == LOCAL


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
            raise TrainError(f"TFJob {qualified_name(job)} failed: {done['Failed'].get('message', 'no message')}")
        time.sleep(poll_seconds)
    raise TrainError(f"TFJob {qualified_name(job)} did not finish within {timeout_seconds:g} s")


def train(cfg, examples: str, out: str, operator: Callable[[dict], str] | None = None) -> dict[str, float]:
    """The train step as a TFJob: config beside the output, the job awaited, the chief's metrics read back.

    `operator` runs the job where its replicas share this machine's files (`launcher.run_tfjob`); without it the
    cluster's operator runs it (`run`), whose pods reach only URIs.
    """
    from components.common import io

    if operator is None and not (io.is_remote(examples) and io.is_remote(out)):
        raise TfpipeError(f"runtime.launcher=tfjob needs artifacts every pod can read (gs://), got {examples} "
                          f"and {out}: give the pipeline a gs:// pipeline root")
    cfg.write(out)
    name = f"tfpipe-{cfg.name}-train-{int(time.time())}"
    job = manifest(name, cfg.runtime.namespace, cfg.pipeline.base_image, cfg.runtime.workers, examples, out,
                   cfg.pipeline.cpu, cfg.pipeline.memory)
    (operator or run)(job)
    return io.read_json(f"{out}/metrics.json")
