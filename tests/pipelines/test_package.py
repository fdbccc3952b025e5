"""`tfpipe run --package FILE`: the compiled file itself runs here, a KFP file's TFJob as its Chief and Worker
replicas (a Vertex file's train job as its worker pools' replicas, each step in the image: test_docker.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kfp import compiler

from components.common import config as config_lib
from components.common.model_loading import load_model
from components.data import write_penguins
from components.train import launcher, tfjob
from pipelines import training
from pipelines.targets.package import Package, PackageError
from tests.conftest import ROOT


def compiled(tmp_path, vertex: bool, *sets: str, config: str = "penguins.yaml") -> Path:
    source = write_penguins(tmp_path / "penguins.csv")
    cfg = config_lib.load(ROOT / "pipelines/configs" / config, [
        f"ingest.source={source}", f"runs_root={tmp_path}/runs", f"export.base={tmp_path}/serving", "train.epochs=2",
        "deploy.infra_check=false", *sets])
    path = tmp_path / ("vertex.yaml" if vertex else "kfp.yaml")
    compiler.Compiler().compile(training.build(cfg, vertex=vertex), str(path))
    return path


def test_vertex_sets_cluster_spec_and_tf_config_per_replica():
    chief, first, second = (
        {k: json.loads(v) for k, v in env.items()} for env in launcher.vertex_environments([1, 2]))
    pools = chief["CLUSTER_SPEC"]["cluster"]
    assert list(pools) == ["workerpool0", "workerpool1"]
    assert len(pools["workerpool1"]) == 2
    assert [e["CLUSTER_SPEC"]["task"] for e in (chief, first, second)] == [
        {"type": "workerpool0", "index": 0}, {"type": "workerpool1", "index": 0}, {"type": "workerpool1", "index": 1}]
    assert chief["TF_CONFIG"]["cluster"] == {"chief": pools["workerpool0"], "worker": pools["workerpool1"]}
    assert [e["TF_CONFIG"]["task"] for e in (chief, first, second)] == [
        {"type": "chief", "index": 0}, {"type": "worker", "index": 0}, {"type": "worker", "index": 1}]


TFJOB = ("runtime.launcher=tfjob", "runtime.workers=2", "train.model.hidden_units=[8]",
         "evaluate.thresholds={accuracy: {at_least: 0}}")  # blessed: export and serve run too


def test_the_rehearsal_names_the_local_operator_in_the_train_steps_container(tmp_path):
    package = Package.read(compiled(tmp_path, False, *TFJOB))
    executors = package.rehearsed()["deploymentSpec"]["executors"]
    assert executors["exec-train"]["container"]["env"] == [{"name": tfjob.OPERATOR, "value": "local"}]
    assert [name for name, e in executors.items() if "env" in e["container"]] == ["exec-train"]
    assert "env" not in package.ir["deploymentSpec"]["executors"]["exec-train"]["container"]  # the file as compiled


@pytest.mark.slow
def test_the_compiled_kfp_file_trains_as_a_tfjob_of_chief_and_worker(tmp_path):
    """No containers: the --docker rehearsal of replicas in the step's container is the Vertex file's
    (tests/pipelines/test_docker.py)."""
    path = compiled(tmp_path, False, *TFJOB)
    done = subprocess.run([str(Path(sys.executable).with_name("tfpipe")), "run", "--package", str(path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [run_dir] = (tmp_path / "runs").glob("tfpipe-penguins-*")
    model_dir = run_dir / "train" / "model"
    # what every replica read, written by the step beside the output before the job started
    written = config_lib.RunConfig.from_json((model_dir / "config.json").read_text())
    assert (written.runtime.launcher, written.runtime.workers) == ("tfjob", 2)
    training_record = json.loads((model_dir / "training.json").read_text())
    assert training_record["workers"] == 2
    assert training_record["strategy"] == "CollectiveAllReduceStrategy"
    model = load_model(str(model_dir))
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"][0] == 8
    log = (run_dir / "pipeline.log").read_text()
    assert "started 2 workers" in log
    assert "[worker 1]" in log
    assert "[worker 1]" not in done.stdout  # the workers' lines are kept in the log, not shown
    assert not list(model_dir.glob(".train-worker-*"))
    assert f"run {run_dir}" in done.stdout  # the summary of a `tfpipe run`, through to serving
    assert any(line.strip().startswith("train ") for line in done.stdout.splitlines()), done.stdout
    assert "blessed   yes" in done.stdout
    assert (tmp_path / "serving" / "penguins" / "1" / "saved_model.pb").exists()


def test_a_package_runs_as_it_is(tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("tfpipe")), "run", "--package", str(tmp_path / "x"),
                           "--set", "train.epochs=1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--package runs a compiled pipeline file as it is" in done.stderr
    (tmp_path / "other.yaml").write_text("pipelineInfo: {name: other}\nroot: {}\n")
    with pytest.raises(PackageError, match="other.yaml: not a pipeline tfpipe compiled"):
        Package.read(tmp_path / "other.yaml")
