"""Deploy targets for a version that passed the infra check.

- local: the version folder is placed (whole: staged, then renamed) in the
  serving base a running `tfpipe serve` watches, which loads it within a poll.
- kserve: an InferenceService (`modelFormat: tensorflow`, the real TF Serving
  runtime) pointing at the model base's storage URI, written as YAML and,
  with `deploy.apply`, created or replaced with the kubernetes client. It
  asks for KServe's Standard deployment mode (a plain Deployment; Knative's
  mode refuses container lifecycle hooks), where a rollout stops a pod as
  `tfpipe serve` stops: a readiness probe on the model's status route, a
  preStop pause of serve.shutdown_delay_seconds (the pod leaves its Service's
  endpoints asynchronously, and TF Serving has no delay of its own), and a
  termination grace covering that pause and serve.shutdown_grace_seconds.
  TF Serving there follows the registry's aliases: the registry writes its
  model config (`models.config`: the labelled versions loaded, the aliases
  as version labels) in the model base and renders it again on every
  promotion and rollback, and the server polls it (`--model_config_file`).
- vertex: `UploadModelRequest` with Vertex's prebuilt TF serving image, then
  an endpoint (created unless one is named) and `DeployModelRequest` with a
  traffic split, sent with the google-cloud-aiplatform GAPIC clients.

Request logging (`serve.logging.sampling_rate` > 0) goes with the model: the
InferenceService gets KServe's logger (`spec.predictor.logger`: mode and
sink URL; KServe logs every request, it does not sample), the endpoint
Vertex's request-response logging to BigQuery at the sampling rate (set when
the endpoint is created, or updated on an existing one).

Cloud calls use the real SDKs; the tests here check the requests they send
(KServe's against a recording HTTP server on 127.0.0.1). Nothing here has
been run against a live cluster or Vertex project.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import yaml

from components.common import io, tf_serving_config
from components.common.config import DeployConfig, RequestLogConfig, ServeConfig
from components.common.registry import Registry
from components.serve.deployment import Deployment

KSERVE = {"group": "serving.kserve.io", "version": "v1beta1", "plural": "inferenceservices"}
NO_LOGGING = RequestLogConfig()  # serve.logging's defaults: requests are not logged
SHUTDOWN = ServeConfig()  # serve's defaults: how long a stopping server keeps answering, then drains
KSERVE_REST_PORT = 8080  # KServe's TF Serving runtime serves REST here
LABELS_POLL_SECONDS = 10  # how often KServe's TF Serving re-reads the registry's labels


def local(version_dir: str, name: str, version: int, base: str) -> str:
    """Places `version_dir` as `<base>/<name>/<version>`; a no-op when it is there already."""
    target = Path(base) / name / str(version)
    if target.resolve() == Path(version_dir).resolve():
        return str(target)
    with io.staged_dir(str(target)) as stage:
        shutil.copytree(version_dir, stage, dirs_exist_ok=True)
    return str(target)


def kserve_manifest(cfg: DeployConfig, name: str, request_logging: RequestLogConfig = NO_LOGGING) -> dict:
    delay = math.ceil(SHUTDOWN.shutdown_delay_seconds)
    predictor = {
        "terminationGracePeriodSeconds": delay + math.ceil(SHUTDOWN.shutdown_grace_seconds),
        "model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": cfg.storage_uri,
            # The registry's aliases as TF Serving's version labels, re-read as promotions change them (its
            # --model_name and --model_base_path are then ignored).
            "args": [f"--model_config_file={cfg.storage_uri.rstrip('/')}/{tf_serving_config.FILE}",
                     f"--model_config_file_poll_wait_seconds={LABELS_POLL_SECONDS}"],
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
            "readinessProbe": {"httpGet": {"path": f"/v1/models/{name}", "port": KSERVE_REST_PORT},
                               "periodSeconds": 5},
            "lifecycle": {"preStop": {"sleep": {"seconds": delay}}},
        },
    }
    if request_logging.sampling_rate > 0:
        predictor["logger"] = {"mode": request_logging.kserve_mode,
                               **({"url": request_logging.kserve_url} if request_logging.kserve_url else {})}
    return {
        "apiVersion": f"{KSERVE['group']}/{KSERVE['version']}",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": cfg.namespace, "labels": {"app.kubernetes.io/managed-by": "tfpipe"},
                     "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
        "spec": {"predictor": predictor},
    }


def kserve(cfg: DeployConfig, home: str, out: str, api_client=None,
           request_logging: RequestLogConfig = NO_LOGGING) -> Deployment:
    """Has the registry in `home` (the folder `cfg.storage_uri` names) write TF Serving's model config with its
    labels, writes `<out>/inferenceservice.yaml`; with `cfg.apply`, creates (or replaces) it in the cluster."""
    name = Path(home).name
    Registry(home).follow_in_tf_serving(cfg.storage_uri)
    manifest = kserve_manifest(cfg, name, request_logging)
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


def vertex_requests(cfg: DeployConfig, name: str, version: int,
                    request_logging: RequestLogConfig = NO_LOGGING):
    """The upload and endpoint requests, built with aiplatform_v1's types (sent by `vertex`)."""
    from google.cloud import aiplatform_v1 as v1

    parent = f"projects/{cfg.project}/locations/{cfg.region}"
    upload = v1.UploadModelRequest(parent=parent, model=v1.Model(
        display_name=name, artifact_uri=f"{cfg.storage_uri.rstrip('/')}/{version}",
        labels={"managed-by": "tfpipe", "version": str(version)},
        container_spec=v1.ModelContainerSpec(image_uri=cfg.serving_image)))
    endpoint = v1.CreateEndpointRequest(parent=parent, endpoint=v1.Endpoint(
        display_name=name, predict_request_response_logging_config=vertex_logging(request_logging)))
    return upload, endpoint


def vertex_logging(request_logging: RequestLogConfig):
    """The endpoint's request-response logging to BigQuery; None when the requests are not logged."""
    from google.cloud import aiplatform_v1 as v1

    if request_logging.sampling_rate <= 0:
        return None
    destination = request_logging.bigquery_destination
    return v1.PredictRequestResponseLoggingConfig(
        enabled=True, sampling_rate=request_logging.sampling_rate,
        bigquery_destination=v1.BigQueryDestination(output_uri=destination) if destination else None)


def vertex_logging_update(endpoint: str, request_logging: RequestLogConfig):
    """The update that turns request-response logging on for an endpoint that already exists."""
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    return v1.UpdateEndpointRequest(
        endpoint=v1.Endpoint(name=endpoint, predict_request_response_logging_config=vertex_logging(request_logging)),
        update_mask=field_mask_pb2.FieldMask(paths=["predict_request_response_logging_config"]))


def vertex_deploy_request(cfg: DeployConfig, endpoint: str, model: str):
    from google.cloud import aiplatform_v1 as v1

    deployed = v1.DeployedModel(model=model, dedicated_resources=v1.DedicatedResources(
        machine_spec=v1.MachineSpec(machine_type=cfg.machine_type), min_replica_count=1, max_replica_count=2))
    # "0" is the model being deployed; the rest of the traffic stays with what the endpoint serves now.
    return v1.DeployModelRequest(endpoint=endpoint, deployed_model=deployed,
                                 traffic_split={"0": cfg.traffic_percent})


def vertex(cfg: DeployConfig, name: str, version: int,
           request_logging: RequestLogConfig = NO_LOGGING) -> Deployment:
    """Uploads the version, then deploys it to the endpoint with the configured share of traffic."""
    from google.cloud import aiplatform_v1 as v1

    options = {"api_endpoint": f"{cfg.region}-aiplatform.googleapis.com"}
    upload, create_endpoint = vertex_requests(cfg, name, version, request_logging)
    model = v1.ModelServiceClient(client_options=options).upload_model(request=upload).result().model
    endpoints = v1.EndpointServiceClient(client_options=options)
    endpoint = cfg.endpoint or endpoints.create_endpoint(request=create_endpoint).result().name
    if cfg.endpoint and request_logging.sampling_rate > 0:
        endpoints.update_endpoint(request=vertex_logging_update(endpoint, request_logging))
    endpoints.deploy_model(request=vertex_deploy_request(cfg, endpoint, model)).result()
    return Deployment(True, "vertex", model=model, endpoint=endpoint)
