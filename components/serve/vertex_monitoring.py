"""Vertex Model Monitoring for a Vertex endpoint: what the monitoring pipeline does for a `tfpipe serve`.

A Vertex endpoint logs its requests to BigQuery, not to the PredictionLog files the
monitor step reads, so on Vertex the same watch is Vertex's own
`ModelDeploymentMonitoringJob` (`monitor.vertex_job`): every deployed model of the
endpoint is compared with the train split it was trained on (skew, per feature, with
`monitor.skew`'s thresholds) and with its earlier requests (drift, `monitor.drift`),
on the requests `serve.logging.sampling_rate` samples, every `monitor.window_seconds`
rounded up to whole hours (Vertex's least interval is one hour), and
`monitor.alert_emails` are mailed when a threshold is crossed. Vertex measures
the features a request sends; the threshold set by the label's name (the
predictions', for the monitor step) has no Vertex counterpart and is left out.

An endpoint has at most one monitoring job: an existing one is updated to watch the
endpoint's models as they are now. Built with aiplatform_v1's GAPIC types and
clients; the tests send the requests to a stand-in Vertex API on 127.0.0.1. Not run
against a live project.
"""

from __future__ import annotations

import math

from components.common.config import DeployConfig, DriftThresholds, MonitorConfig, RequestLogConfig
from components.common.errors import TfpipeError

HOUR = 3600
# What an update of an existing job sets: everything this module decides, nothing Vertex keeps of its own.
UPDATED = ("model_deployment_monitoring_objective_configs", "model_deployment_monitoring_schedule_config",
           "logging_sampling_strategy", "model_monitoring_alert_config")


class VertexMonitoringError(TfpipeError):
    """The monitoring job cannot be built from the config."""


def job(monitor: MonitorConfig, request_logging: RequestLogConfig, endpoint, examples: str, label: str, name: str):
    """The ModelDeploymentMonitoringJob for `endpoint` (a v1.Endpoint with its deployed models), whose models were
    trained on the ingest output `examples` (gs://) with label `label`."""
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import duration_pb2

    if request_logging.sampling_rate <= 0:
        raise VertexMonitoringError("monitor.vertex_job: Vertex monitors the requests the endpoint logs; expected "
                                    "serve.logging.sampling_rate > 0")
    if not examples.startswith("gs://"):
        raise VertexMonitoringError(f"monitor.vertex_job: Vertex reads the training data from gs://; the examples "
                                    f"are at {examples}")
    if not endpoint.deployed_models:
        raise VertexMonitoringError(f"{endpoint.name}: no model is deployed to the endpoint; nothing to monitor")
    objective = v1.ModelMonitoringObjectiveConfig(
        training_dataset=v1.ModelMonitoringObjectiveConfig.TrainingDataset(
            gcs_source=v1.GcsSource(uris=[f"{examples.rstrip('/')}/train/*.tfrecord.gz"]), data_format="tf-record",
            target_field=label),
        training_prediction_skew_detection_config=v1.ModelMonitoringObjectiveConfig
        .TrainingPredictionSkewDetectionConfig(**_thresholds(monitor.skew, label, "skew")),
        prediction_drift_detection_config=v1.ModelMonitoringObjectiveConfig.PredictionDriftDetectionConfig(
            **_thresholds(monitor.drift, label, "drift")))
    hours = max(1, math.ceil(monitor.window_seconds / HOUR))
    return v1.ModelDeploymentMonitoringJob(
        display_name=f"{name}-monitoring", endpoint=endpoint.name,
        model_deployment_monitoring_objective_configs=[
            v1.ModelDeploymentMonitoringObjectiveConfig(deployed_model_id=deployed.id, objective_config=objective)
            for deployed in endpoint.deployed_models],
        model_deployment_monitoring_schedule_config=v1.ModelDeploymentMonitoringScheduleConfig(
            monitor_interval=duration_pb2.Duration(seconds=hours * HOUR)),
        logging_sampling_strategy=v1.SamplingStrategy(random_sample_config=v1.SamplingStrategy.RandomSampleConfig(
            sample_rate=request_logging.sampling_rate)),
        model_monitoring_alert_config=v1.ModelMonitoringAlertConfig(
            email_alert_config=v1.ModelMonitoringAlertConfig.EmailAlertConfig(user_emails=list(monitor.alert_emails)),
            enable_logging=True),
        labels={"managed-by": "tfpipe"})


def _thresholds(thresholds: DriftThresholds, label: str, kind: str) -> dict:
    from google.cloud import aiplatform_v1 as v1

    return {f"{kind}_thresholds": {name: v1.ThresholdConfig(value=value)
                                   for name, value in thresholds.features.items() if name != label},
            f"default_{kind}_threshold": v1.ThresholdConfig(value=thresholds.default)}


def watch(cfg: DeployConfig, monitor: MonitorConfig, request_logging: RequestLogConfig, endpoint_name: str,
          examples: str, label: str, name: str, endpoints=None, jobs=None) -> str:
    """Creates the endpoint's monitoring job, or updates the one it has; the job's resource name. `endpoints` and
    `jobs` are aiplatform_v1's EndpointService and JobService clients (default: Vertex's, in cfg.region)."""
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    options = {"api_endpoint": f"{cfg.region}-aiplatform.googleapis.com"}
    endpoints = endpoints or v1.EndpointServiceClient(client_options=options)
    jobs = jobs or v1.JobServiceClient(client_options=options)
    wanted = job(monitor, request_logging, endpoints.get_endpoint(name=endpoint_name), examples, label, name)
    parent = f"projects/{cfg.project}/locations/{cfg.region}"
    existing = next((j for j in jobs.list_model_deployment_monitoring_jobs(parent=parent)
                     if j.endpoint == endpoint_name), None)
    if existing is None:
        return jobs.create_model_deployment_monitoring_job(parent=parent, model_deployment_monitoring_job=wanted).name
    wanted.name = existing.name
    jobs.update_model_deployment_monitoring_job(model_deployment_monitoring_job=wanted,
                                                update_mask=field_mask_pb2.FieldMask(paths=list(UPDATED))).result()
    return existing.name
