"""The component image: one step alone with `docker run`, and a compiled Vertex file under kfp.local's DockerRunner
(the whole DAG in containers, on Cloud Storage: test_docker_gcs.py).

`make test` starts a Docker engine and builds the image first (`make host`, tests/setup-host.sh); where
either is missing these tests fail with the command to run, never skip.
"""

import json
import os

import pytest

from components.common import config as config_lib
from components.common.model_loading import load_model
from components.common.registry import Registry
from components.data import write_penguins
from pipelines.targets import local
from tests.conftest import ROOT

IMAGE = os.environ.get("TFPIPE_IMAGE", "tfpipe-components:latest")


@pytest.fixture(scope="module")
def engine():
    import docker

    try:
        client = docker.from_env()
        client.images.get(IMAGE)
    except docker.errors.DockerException as e:  # no engine, or no image built
        pytest.fail(f"needs a Docker engine and the {IMAGE} image: run `make host` (tests/setup-host.sh): {e}")
    yield client
    client.close()


pytestmark = pytest.mark.docker


def test_the_image_runs_as_non_root(engine):
    assert engine.containers.run(IMAGE, ["id", "-u"], remove=True, network_mode="none").decode().strip() == "10001"


def test_one_step_alone_in_the_image(engine, tmp_path):
    csv = write_penguins(tmp_path / "data" / "penguins.csv")
    (tmp_path / "out").mkdir()
    logs = engine.containers.run(
        IMAGE, ["python", "-m", "components", "ingest", "--set", f"ingest.source={csv}",
                "--set", "ingest.label=species", "--out", f"{tmp_path}/out/examples"],
        remove=True, network_mode="none", user=f"{os.getuid()}:{os.getgid()}", environment={"HOME": "/tmp"},
        volumes={str(tmp_path / "data"): {"bind": str(tmp_path / "data"), "mode": "ro"},
                 str(tmp_path / "out"): {"bind": str(tmp_path / "out"), "mode": "rw"}})
    assert "344 rows" in logs.decode()
    assert json.loads((tmp_path / "out" / "examples" / "schema.json").read_text())["label"] == "species"


def test_a_compiled_vertex_file_runs_in_containers_with_its_worker_pools(engine, tmp_path):
    """`tfpipe run --package FILE --docker`: what Vertex would run, each step in the image, two train replicas,
    on a team's model: the module is in no image; it reaches the train containers in the config, later ones
    beside the model. The model home is outside the runs folder, as a team's shared one would be."""
    from kfp import compiler

    from pipelines import training
    from pipelines.targets.package import Package

    source = write_penguins(tmp_path / "data" / "penguins.csv")
    cfg = config_lib.load(ROOT / "pipelines/configs/penguins_wide_deep.yaml", [
        f"ingest.source={source}", f"runs_root={tmp_path}/runs", f"export.base={tmp_path}/serving", "train.epochs=2",
        "runtime.workers=2", "tune.space={}", "deploy.infra_check=false", f"pipeline.base_image={IMAGE}"])
    compiler.Compiler().compile(training.build(cfg, vertex=True), str(tmp_path / "vertex.yaml"))
    package = Package.read(tmp_path / "vertex.yaml")
    run_dir = local.run(package.config, docker=True, package=package)
    model = run_dir / "train" / "model"
    training_record = json.loads((model / "training.json").read_text())
    assert training_record["workers"] == 2
    assert training_record["strategy"] == "CollectiveAllReduceStrategy"
    assert json.loads((model / "model_module.json").read_text())["sha256"] == cfg.train.model.source.sha256
    assert {"CrossLayer", "HashedCrossing"} <= {type(layer).__name__ for layer in load_model(str(model)).layers}
    log = (run_dir / "pipeline.log").read_text()
    assert f"Found image '{IMAGE}'" in log
    assert "started 2 workers" in log
    assert "[worker 1]" in log
    assert not list(model.glob(".train-worker-*"))  # the other replica's copies are gone
    assert json.loads((run_dir / "evaluate" / "evaluation" / "blessing.json").read_text())["blessed"]
    deploy = json.loads((run_dir / "serve" / "deployment" / "deploy.json").read_text())
    assert deploy["deployed"]
    # The model home lies outside the runs folder: mounted at its own path, it holds what the containers wrote.
    assert Registry(str(tmp_path / "serving" / "penguins_wide_deep")).get(1).blessed
    assert (tmp_path / "serving" / "penguins_wide_deep" / "1" / "saved_model.pb").exists()
