"""The compiled pipeline on a KFP cluster or on Vertex AI Pipelines, once or on a schedule.

KFP: `kfp.Client(host).create_run_from_pipeline_package` for one run,
`create_recurring_run` with a cron expression for a schedule. Vertex:
`aiplatform.PipelineJob` for one run, `PipelineJobSchedule` for a schedule.
KFP's cron has six fields (seconds first), Vertex's five; either form is
accepted and translated. Built with the real SDKs; the tests check the
requests against a recording KFP API server on 127.0.0.1 and the Vertex
objects built with anonymous credentials. They have not been run against a
live cluster or project.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from components.common.errors import TfpipeError


@dataclass(frozen=True)
class Target:
    """Where a pipeline runs: a KFP cluster (`kfp_host`), Vertex AI Pipelines (`vertex`), or, with neither,
    this machine (`tfpipe run`). A monitoring pipeline carries its own, to start training where it runs."""

    kfp_host: str = ""
    namespace: str = "kubeflow"
    experiment: str = "tfpipe"
    vertex: bool = False
    project: str = ""
    region: str = "us-central1"
    pipeline_root: str = ""

    @property
    def local(self) -> bool:
        return not self.kfp_host and not self.vertex

    def check(self) -> Target:
        if self.kfp_host and self.vertex:
            raise TfpipeError("expected one target: --kfp-host URL, or --vertex with --project and --pipeline-root")
        if self.vertex and not self.project:
            raise TfpipeError("--vertex needs --project")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Target:
        return cls(**json.loads(text)).check() if text else cls()


def start(pipeline, name: str, target: Target, cache: bool, cron: str = "") -> str:
    """Compiles the pipeline function and starts it on `target` (a cluster): one run, or a schedule with `cron`.
    What was made, in words with its id."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp, _first_contact(target):
        package = f"{tmp}/{name}.yaml"
        compiler.Compiler().compile(pipeline, package)
        if target.kfp_host:
            client = kfp_client(target.kfp_host, target.namespace)
            if cron:
                return "recurring run " + kfp_schedule(client, package, name, target.experiment, cron, cache)
            return "run " + kfp_submit(client, package, name, target.experiment, cache)
        job = vertex_job(package, name, target.project, target.region, target.pipeline_root, cache)
        if cron:
            schedule = vertex_schedule(job, name)
            schedule.create(cron=cron_for(cron, "vertex"))
            return f"schedule {schedule.resource_name}"
        job.submit()
        return f"pipeline job {job.resource_name}"


class ClusterError(TfpipeError):
    """The cluster or project cannot be reached as given: no credentials, no answer, not a KFP API."""


@contextlib.contextmanager
def _first_contact(target: Target) -> Iterator[None]:
    """The first things that go wrong against a cluster, as one line with the way out instead of a traceback."""
    import google.auth.exceptions
    import kfp_server_api

    try:
        yield
    except google.auth.exceptions.DefaultCredentialsError:
        raise ClusterError(f"--vertex --project {target.project}: no Google credentials (Application Default "
                           f"Credentials) on this machine; run `gcloud auth application-default login`, or set "
                           f"GOOGLE_APPLICATION_CREDENTIALS to a service account's key file") from None
    except kfp_server_api.exceptions.ApiException as e:
        raise ClusterError(f"--kfp-host {target.kfp_host}: answered HTTP {e.status} {e.reason} where the KFP API "
                           f"should be; check the URL (and namespace {target.namespace})") from None


class CronError(TfpipeError):
    """A cron expression that neither KFP nor Vertex can take."""


def cron_for(expression: str, target: str) -> str:
    """`expression` (5 or 6 fields) as `target` ("kfp": 6 fields, "vertex": 5) wants it."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(f"--cron {expression!r}: expected 5 fields (minute hour day month weekday) "
                        "or 6 (second first)")
    if target == "kfp":
        return " ".join(fields if len(fields) == 6 else ["0", *fields])
    if len(fields) == 6 and fields[0] != "0":
        raise CronError(f"--cron {expression!r}: Vertex schedules have no seconds field; use 0 seconds")
    return " ".join(fields[-5:])


def kfp_client(host: str, namespace: str):
    import logging
    import warnings

    import kfp

    _answers_as_kfp(host)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This client only works with Kubeflow Pipeline v2", FutureWarning)
        return kfp.Client(host=host, namespace=namespace)


def _answers_as_kfp(host: str) -> None:
    """A quick look at the API's health endpoint before kfp.Client, which retries an answer that is not KFP's
    for half a minute: no answer, or a page that is not there, is a ClusterError at once. Other answers (a
    login a cluster's proxy asks for) are left to the client, which brings the credentials."""
    import urllib.error
    import urllib.request

    url = f"{host.rstrip('/')}/apis/v2beta1/healthz"
    try:
        urllib.request.urlopen(url, timeout=15).close()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise ClusterError(f"--kfp-host {host}: answered HTTP 404 Not Found where the KFP API should be "
                               f"({url}); check the URL") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ClusterError(f"--kfp-host {host}: no answer ({reason}); check the URL, or reach the cluster's KFP "
                           f"API through a port forward: kubectl port-forward -n kubeflow svc/ml-pipeline-ui "
                           f"8080:80, then --kfp-host http://127.0.0.1:8080") from None


def kfp_submit(client, package: str, name: str, experiment: str, cache: bool) -> str:
    """Starts one run; its id."""
    result = client.create_run_from_pipeline_package(package, arguments={}, run_name=name,
                                                     experiment_name=experiment, enable_caching=cache)
    return result.run_id


def kfp_schedule(client, package: str, name: str, experiment: str, cron: str, cache: bool) -> str:
    """Creates a recurring run; its id."""
    experiment_id = client.create_experiment(experiment).experiment_id
    recurring = client.create_recurring_run(experiment_id=experiment_id, job_name=name,
                                            cron_expression=cron_for(cron, "kfp"), pipeline_package_path=package,
                                            enable_caching=cache, max_concurrency=1, no_catchup=True)
    return recurring.recurring_run_id


def vertex_job(package: str, name: str, project: str, region: str, pipeline_root: str, cache: bool,
               credentials=None):
    """A Vertex PipelineJob for the compiled package (not yet submitted)."""
    from google.cloud import aiplatform

    if not pipeline_root.startswith("gs://"):
        raise TfpipeError(f"--pipeline-root {pipeline_root!r}: Vertex needs a gs:// folder for run outputs")
    return aiplatform.PipelineJob(display_name=name, template_path=package, pipeline_root=pipeline_root,
                                  enable_caching=cache, project=project, location=region, credentials=credentials,
                                  labels={"managed-by": "tfpipe"})


def vertex_schedule(job, name: str, credentials=None):
    """A PipelineJobSchedule around `job` (created by `.create(cron=...)`)."""
    from google.cloud import aiplatform

    return aiplatform.PipelineJobSchedule(pipeline_job=job, display_name=name, credentials=credentials,
                                          project=job.project, location=job.location)
