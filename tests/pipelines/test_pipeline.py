"""The KFP DAG: compiled IR, and whole local runs with kfp.local (blessed or not, cached, failing)."""

import builtins
import json

import pytest
import yaml
from kfp import compiler, components

from components.common import config as config_lib
from components.common.registry import Registry
from components.data import write_penguins
from pipelines import summary, training
from pipelines.records import EvaluateRecord, ExportRecord, WhatIfRecord
from pipelines.targets import local
from pipelines.targets.local import PipelineError
from tests.conftest import ROOT


def test_compiled_pipeline(tmp_path):
    cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml", ["pipeline.base_image=registry.example/tfpipe:1.0",
                                                                   "pipeline.retries=2"])
    path = tmp_path / "digits.yaml"
    compiler.Compiler().compile(training.build(cfg), str(path))
    assert components.load_component_from_file(str(path)).name == "tfpipe-digits"
    ir = yaml.safe_load(path.read_text())
    executors = ir["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"registry.example/tfpipe:1.0"}
    assert "pip install" not in json.dumps(executors)  # kfp comes with the image
    dag = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert set(dag) == {"ingest", "validate", "condition-2"}
    assert dag["ingest"]["cachingOptions"]["enableCache"]
    assert dag["ingest"]["retryPolicy"]["maxRetryCount"] == 2
    assert not dag["validate"]["cachingOptions"].get("enableCache", False)
    assert dag["condition-2"]["triggerPolicy"]["condition"] == \
        "inputs.parameter_values['pipelinechannel--validate-Output'] == true"
    validated = ir["components"]["comp-condition-2"]["dag"]["tasks"]
    assert set(validated) == {"train", "evaluate", "whatif", "condition-3"}
    assert validated["train"]["cachingOptions"]["enableCache"]
    assert not validated["evaluate"]["cachingOptions"].get("enableCache", False)
    assert validated["condition-3"]["triggerPolicy"]["condition"] == \
        "inputs.parameter_values['pipelinechannel--evaluate-Output'] == true"
    blessed = ir["components"]["comp-condition-3"]["dag"]["tasks"]
    assert set(blessed) == {"export", "serve"}
    root = ir["root"]["dag"]["tasks"]
    assert root["summary"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    train_resources = executors["exec-train"]["container"]["resources"]
    assert train_resources["cpuLimit"] == 2.0
    assert train_resources["memoryLimit"] == 8.0


@pytest.fixture
def penguins_cfg(tmp_path):
    source = write_penguins(tmp_path / "penguins.csv")
    return lambda *sets: config_lib.load(ROOT / "pipelines/configs/penguins.yaml", [
        f"ingest.source={source}", f"runs_root={tmp_path}/runs", "train.epochs=3", *sets])


@pytest.mark.slow
def test_unblessed_skips_export_and_serve_and_a_rerun_hits_the_cache(penguins_cfg):
    cfg = penguins_cfg("evaluate.thresholds.accuracy.at_least=1.01")
    first = local.run(cfg)
    assert {p.name for p in first.iterdir() if p.is_dir()} == {"ingest", "validate", "train", "evaluate", "whatif",
                                                                "summary"}
    assert (first / "whatif" / "report").read_text().startswith("<!doctype html>")
    lines = "\n".join(summary.lines(first))
    assert "blessed   NO" in lines
    assert "serving   not exported: the model was not blessed" in lines
    assert "- state: **SUCCEEDED**" in (first / "summary" / "report").read_text()
    second = local.run(cfg)
    assert not (second / "ingest").exists()
    assert not (second / "train").exists()
    again = "\n".join(summary.lines(second))
    assert "ingest    cached" in again
    assert "train     cached" in again
    assert str(first / "train" / "model" / "model.keras") in again


@pytest.mark.slow
def test_a_failing_step_is_named(penguins_cfg):
    with pytest.raises(PipelineError, match=r"step 'train' failed: .*TrainError: train.model.api=sequential takes "
                                            r"exactly one image feature"):
        local.run(penguins_cfg("train.model.api=sequential"))  # the penguins have no image to convolve


@pytest.mark.slow
def test_tuning_in_the_pipeline_feeds_the_best_values_to_train(penguins_cfg):
    cfg = penguins_cfg("train.epochs=2", "deploy.infra_check=false", "tune.metric=loss", "tune.goal=minimize",
                       "tune.space={learning_rate: {values: [0.0001, 0.03]}}", "tune.parallel=2")
    printing = builtins.print
    run_dir = local.run(cfg)
    assert builtins.print is printing  # kfp.local's indenting print, left behind by trials run at once, is undone
    records = [json.loads((d / "executor_output.json").read_text())["parameterValues"]["Output"]
               for d in run_dir.glob("for-loop-*/run-trial")]
    assert sorted(r["params"]["learning_rate"] for r in records) == [0.0001, 0.03]
    best = min(records, key=lambda r: r["metric"])["params"]
    assert best == {"learning_rate": 0.03}  # a hundred times the learning rate wins in two epochs
    trained = json.loads((run_dir / "train" / "model" / "config.json").read_text())
    assert trained["train"]["learning_rate"] == 0.03
    assert "tuned     best of 2 trials: {'learning_rate': 0.03}" in "\n".join(summary.lines(run_dir))


def test_a_span_source_is_never_cached(tmp_path):
    cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml", ["ingest.source=gs://bucket/digits/span-{SPAN}"])
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(training.build(cfg), str(path))
    components = yaml.safe_load(path.read_text())["components"]
    tasks = components["comp-exit-handler-1"]["dag"]["tasks"]
    assert not tasks["ingest"]["cachingOptions"].get("enableCache", False)
    assert components["comp-condition-2"]["dag"]["tasks"]["train"]["cachingOptions"]["enableCache"]


def test_a_warm_start_from_the_registry_is_never_cached(tmp_path):
    cfg = config_lib.load(ROOT / "pipelines/configs/retraining.yaml")
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(training.build(cfg), str(path))
    train = yaml.safe_load(path.read_text())["components"]["comp-condition-2"]["dag"]["tasks"]["train"]
    assert not train["cachingOptions"].get("enableCache", False)


def test_vertex_trains_as_a_custom_job_of_the_workers(tmp_path):
    cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml", [
        "runtime.workers=3", "pipeline.machine_type=n1-highmem-8", "pipeline.accelerator_type=NVIDIA_TESLA_T4",
        "pipeline.accelerator_count=2", "pipeline.vertex_tensorboard=projects/p/locations/r/tensorboards/7",
        "pipeline.vertex_output_directory=gs://bucket/custom"])
    path = tmp_path / "vertex.yaml"
    compiler.Compiler().compile(training.build(cfg, vertex=True), str(path))
    ir = yaml.safe_load(path.read_text())
    defaults = {k: v.get("defaultValue") for k, v in
                ir["components"]["comp-train"]["inputDefinitions"]["parameters"].items()}
    pools = defaults["worker_pool_specs"]
    assert [int(p["replica_count"]) for p in pools] == [1, 2]  # the chief, then the other workers
    assert pools[0]["machine_spec"] == {"machine_type": "n1-highmem-8", "accelerator_type": "NVIDIA_TESLA_T4",
                                        "accelerator_count": 2}
    assert pools[0]["container_spec"]["image_uri"] == "tfpipe-components:latest"
    assert defaults["tensorboard"] == "projects/p/locations/r/tensorboards/7"
    assert defaults["base_output_directory"] == "gs://bucket/custom"
    assert "google-cloud-pipeline-components" in ir["deploymentSpec"]["executors"]["exec-train"]["container"]["image"]


def test_ingest_on_dataflow_gets_the_beam_section_with_the_component_image_for_its_workers():
    local_cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml")
    assert json.loads(training.ingest_sections(local_cfg))["beam"]["sdk_container_image"] == ""
    cfg = config_lib.load(ROOT / "pipelines/configs/digits.yaml", [
        "ingest.engine=beam", "beam.runner=DataflowRunner", "beam.project=acme", "beam.temp_location=gs://acme/tmp",
        "pipeline.base_image=europe-docker.pkg.dev/acme/ml/tfpipe:1.4"])
    sections = json.loads(training.ingest_sections(cfg))
    assert set(sections) == {"ingest", "beam"}
    assert sections["ingest"]["engine"] == "beam"
    assert sections["beam"]["sdk_container_image"] == "europe-docker.pkg.dev/acme/ml/tfpipe:1.4"
    named = config_lib.load(ROOT / "pipelines/configs/digits.yaml", [
        "beam.runner=DataflowRunner", "beam.project=acme", "beam.temp_location=gs://acme/tmp",
        "beam.sdk_container_image=gcr.io/acme/beam-worker:2"])
    assert json.loads(training.ingest_sections(named))["beam"]["sdk_container_image"] == "gcr.io/acme/beam-worker:2"


@pytest.mark.slow
def test_one_step_alone_on_an_earlier_run(penguins_cfg):
    cfg = penguins_cfg("deploy.infra_check=false")
    first = local.run(cfg)
    again = local.run(cfg, step="whatif", after=str(first))
    assert again.name.startswith("tfpipe-penguins-whatif-")
    assert (again / "whatif" / "report").read_text().startswith("<!doctype html>")
    # The first run exported a blessed version: the step now holds the model beside it, as evaluate would.
    assert WhatIfRecord.read(again).compared_with == f"{Registry(cfg.model_home).baseline().why}, version 1"
    assert "<h2>Verdict</h2>" in (again / "whatif" / "report").read_text()
    assert not (again / "train").exists()
    assert not (again / "ingest").exists()
    evaluated = local.run(cfg, step="evaluate", after=str(first))
    lines = "\n".join(summary.lines(evaluated, alone=True))
    assert "evaluate " in lines
    assert "cached" not in lines
    assert str(first / "train" / "model") in lines
    exported = ExportRecord.read(local.run(cfg, step="export", after=str(first)))
    registered = Registry(cfg.model_home).get(exported.version)  # with the earlier run's evaluation
    assert registered.evaluation.folder == str(first / "evaluate" / "evaluation")
    assert registered.blessed == EvaluateRecord.read(first).blessed


@pytest.mark.parametrize("vertex", [False, True], ids=["kfp", "vertex"])
def test_a_compiled_pipeline_carries_the_teams_module_to_the_cluster(tmp_path, vertex):
    """No image rebuild: the module's text is in the train and tune steps' config, its hash in every step's."""
    cfg = config_lib.load(ROOT / "pipelines/configs/penguins_wide_deep.yaml", ["runtime.workers=2"])
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(training.build(cfg, vertex=vertex), str(path))
    ir = yaml.safe_load(path.read_text())
    parameters = ir["root"]["inputDefinitions"]["parameters"]
    source = (ROOT / "pipelines/configs/models/wide_deep.py").read_text()
    for name in ("train_config", "tune_config", "config"):
        model = json.loads(parameters[name]["defaultValue"])["train"]["model"]
        assert model["source"]["text"] == source
        assert model["source"]["file"] == "wide_deep.py"
        assert model["params"]["cross_layers"] == 2
    if vertex:  # every replica of the CustomJob runs the train component with that config
        pools = ir["components"]["comp-train"]["inputDefinitions"]["parameters"]["worker_pool_specs"]["defaultValue"]
        assert sum(int(p["replica_count"]) for p in pools) == 2
