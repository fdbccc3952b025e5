"""Deploy targets for a version that passed the infra check.

- local: the version folder is placed (whole: staged, then renamed) in the
  serving base a running `tfpipe serve` watches, which loads it within a poll.
- kserve: an InferenceService (`modelFormat: tensorflow`, the real TF Serving
  runtime) pointing at the model base's storage URI, written as YAML and,
  with `deploy.apply`, created or replaced with the kubernetes client.
- vertex: `UploadModelRequest` with Vertex's prebuilt TF serving image, then
  an endpoint (created unless one is named) and `DeployModelRequest` with a
  traffic split, sent with the google-cloud-aiplatform GAPIC clients.

Cloud calls use the real SDKs; the tests here check the requests they send
(KServe's against a recording HTTP server on 127.0.0.1). Nothing here has
been run against a live cluster or Vertex project.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import yaml

from components.common import io
from components.common.config import DeployConfig
from components.serve.deployment import Deployment

KSERVE = {"group": "serving.kserve.io", "version": "v1beta1", "plural": "inferenceservices"}


def local(version_dir: str, name: str, version: int, base: str) -> str:
    """Places `version_dir` as `<base>/<name>/<version>`; a no-op when it is there already."""
    target = Path(base) / name / str(version)
    if target.resolve() == Path(version_dir).resolve():
        return str(target)
    with io.staged_dir(str(target)) as stage:
        shutil.copytree(version_dir, stage, dirs_exist_ok=True)
    return str(target)


def kserve_manifest(cfg: DeployConfig, name: str) -> dict:
    return {
        "apiVersion": f"{KSERVE['group']}/{KSERVE['version']}",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": cfg.namespace, "labels": {"app.kubernetes.io/managed-by": "tfpipe"}},
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": cfg.storage_uri,
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        }}},
    }


def kserve(cfg: DeployConfig, name: str, out: str, api_client=None) -> Deployment:
    """Writes `<out>/inferenceservice.yaml`; with `cfg.apply`, creates (or replaces) it in the cluster."""
    manifest = kserve_manifest(cfg, name)
    io.write_text(f"{out}/inferenceservice.yaml", yaml.safe_dump(manifest, sort_keys=False))
    deployment = Deployment(True, "kserve", manifest=f"{out}/inferenceservice.yaml")
    if not cfg.apply:
        return deployment
    from kubernetes import client, config as kube_config

    if api_client is None:
        kube_config.load_kube_config(context=cfg.kube_context or None)
    api = client.CustomObjectsApi(api_client)
    try:
        api.create_namespaced_custom_object(namespace=cfg.namespace, body=manifest, **KSERVE)
    except client.ApiException as e:
        if e.status != 409:
            raise
        existing = api.get_namespaced_custom_object(namespace=cfg.namespace, name=name, **KSERVE)
        manifest["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        api.replace_namespaced_custom_object(namespace=cfg.namespace, name=name, body=manifest, **KSERVE)
    return dataclasses.replace(deployment, applied=True)


def vertex_requests(cfg: DeployConfig, name: str, version: int):
    """The upload and endpoint requests, built with aiplatform_v1's types (sent by `vertex`)."""
    from google.cloud import aiplatform_v1 as v1

    parent = f"projects/{cfg.project}/locations/{cfg.region}"
    upload = v1.UploadModelRequest(parent=parent, model=v1.Model(
        display_name=name, artifact_uri=f"{cfg.storage_uri.rstrip('/')}/{version}",
        labels={"managed-by": "tfpipe", "version": str(version)},
        container_spec=v1.ModelContainerSpec(image_uri=cfg.serving_image)))
    endpoint = v1.CreateEndpointRequest(parent=parent, endpoint=v1.Endpoint(display_name=name))
    return upload, endpoint


def vertex_deploy_request(cfg: DeployConfig, endpoint: str, model: str):
    from google.cloud import aiplatform_v1 as v1

    deployed = v1.DeployedModel(model=model, dedicated_resources=v1.DedicatedResources(
        machine_spec=v1.MachineSpec(machine_type=cfg.machine_type), min_replica_count=1, max_replica_count=2))
    # "0" is the model being deployed; the rest of the traffic stays with what the endpoint serves now.
    return v1.DeployModelRequest(endpoint=endpoint, deployed_model=deployed,
                                 traffic_split={"0": cfg.traffic_percent})


def vertex(cfg: DeployConfig, name: str, version: int) -> Deployment:
    """Uploads the version, then deploys it to the endpoint with the configured share of traffic."""
    from google.cloud import aiplatform_v1 as v1

    options = {"api_endpoint": f"{cfg.region}-aiplatform.googleapis.com"}
    upload, create_endpoint = vertex_requests(cfg, name, version)
    model = v1.ModelServiceClient(client_options=options).upload_model(request=upload).result().model
    endpoints = v1.EndpointServiceClient(client_options=options)
    endpoint = cfg.endpoint or endpoints.create_endpoint(request=create_endpoint).result().name
    endpoints.deploy_model(request=vertex_deploy_request(cfg, endpoint, model)).result()
    return Deployment(True, "vertex", model=model, endpoint=endpoint)
