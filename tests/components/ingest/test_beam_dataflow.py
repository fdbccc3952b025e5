"""On the DataflowRunner the Beam engine asks for the component image, the beam section's options and its graph.

The job description is built as the runner would send it, offline: Beam's
dry run stops before the Dataflow and Cloud Storage clients, with no
credentials (`--no_auth`), and the description's environment is filled in
as the runner fills it before its request.
"""

import json

import pytest

from components.common.config import BeamConfig, IngestConfig
from components.ingest import batch, beam_engine, sources
from components.ingest.stats import Statistics
from tests.conftest import people_rows, write_csv

IMAGE = "europe-west4-docker.pkg.dev/tfpipe-test/tfpipe/component:1.4.2"
STAGE = "gs://tfpipe-test-runs/run-1/ingest.staging-42-abc"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from apache_beam.runners.dataflow.internal import apiclient

    header, rows = people_rows(20)
    cfg = IngestConfig(source=str(write_csv(tmp_path_factory.mktemp("dataflow") / "p.csv", header, rows)), key="id",
                       shards=3)
    types = {"id": "int", "age": "int", "income": "float", "city": "string", "label": "int"}
    beam = BeamConfig(runner="DataflowRunner", project="tfpipe-test", region="europe-west4",
                      temp_location="gs://tfpipe-test-tmp/beam", sdk_container_image=IMAGE,
                      service_account="ingest@tfpipe-test.iam.gserviceaccount.com",
                      options=("--max_num_workers=7", "--dry_run=True", "--no_auth"))
    pipeline = beam_engine.pipeline(STAGE, sources.resolve(cfg), batch.Plan(types, types, "label", "id", cfg.split),
                                    Statistics(types, "label", 10), cfg, beam, "tfpipe-ingest-run-1")
    submitted = pipeline.run().job
    submitted.proto.environment = apiclient.Environment(
        packages=[], options=submitted.options, environment_version="8", proto_pipeline=submitted.proto_pipeline,
        proto_pipeline_staged_url="gs://tfpipe-test-tmp/beam/pipeline.pb").proto
    return json.loads(submitted.json()), submitted.proto_pipeline


def test_workers_run_the_component_image(job):
    description, graph = job
    pools = description["environment"]["workerPools"]
    assert [image["containerImage"] for pool in pools for image in pool["sdkHarnessContainerImages"]] == [IMAGE]
    assert {env.urn for env in graph.components.environments.values()} == {"beam:env:docker:v1"}


def test_the_beam_section_reaches_the_job(job):
    description, _ = job
    assert description["name"] == "tfpipe-ingest-run-1"
    assert description["type"] == "JOB_TYPE_BATCH"
    options = {d["key"]: d["value"] for d in description["environment"]["sdkPipelineOptions"]["display_data"]}
    assert options["project"] == "tfpipe-test"
    assert options["region"] == "europe-west4"
    assert options["temp_location"].startswith("gs://tfpipe-test-tmp/beam")
    assert options["sdk_location"] == "container"
    assert "use_runner_v2" in options["experiments"]
    assert options["service_account_email"] == "ingest@tfpipe-test.iam.gserviceaccount.com"
    assert options["max_num_workers"] == 7
    assert description["environment"]["workerPools"][0]["autoscalingSettings"]["maxNumWorkers"] == 7


def test_the_graph_ingests_gathers_and_concatenates_into_the_staging_folder(job):
    _, graph = job
    steps = {t.unique_name: t for t in graph.components.transforms.values() if "/" not in t.unique_name}
    assert {"Units", "Ingest", "CountRejected", "Gather", "Save", "Shards", "Concatenate"} <= set(steps)
    # Concatenate waits for every unit: Ingest's main output is its side input.
    ingest_out = set(steps["Ingest"].outputs.values())
    assert ingest_out & set(steps["Concatenate"].inputs.values())
    fn = _dofn(_inner(graph, "Ingest"))
    assert isinstance(fn, beam_engine.Ingest)
    assert fn.stage == STAGE


def _inner(graph, name: str):
    return next(t for t in graph.components.transforms.values() if t.unique_name.startswith(f"{name}/")
                and t.spec.urn == "beam:transform:pardo:v1")


def _dofn(transform):
    """The DoFn a ParDo step runs, as the workers unpickle it."""
    from apache_beam.internal import pickler
    from apache_beam.portability.api import beam_runner_api_pb2

    payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
    return pickler.loads(payload.do_fn.payload)[0]
