"""The cluster rehearsal on Cloud Storage: the whole DAG, every step in the component image, with the source and
the serving base (versions, registry, labels, evaluations) on gs:// in the emulator (tests/gcs.py); then what it
wrote is used from there: the registry promotes and rolls back, `tfpipe serve --model-base gs://...` serves and
follows the promotion, logging requests to gs://, and `tfpipe monitor --log gs://...` reads them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.common import config as config_lib
from components.data import PENGUINS_CSV
from components.serve import announce
from components.serve.client import RestClient, ServeError
from pipelines.targets import local
from tests.components.registry.test_serving import until
from tests.components.serve.test_rest import VALID
from tests.conftest import ROOT

IMAGE = os.environ.get("TFPIPE_IMAGE", "tfpipe-components:latest")
TFPIPE = str(Path(sys.executable).with_name("tfpipe"))

pytestmark = pytest.mark.docker


def tfpipe(*args: str) -> subprocess.CompletedProcess:
    """A `tfpipe` command on this machine, with this process's environment (pointed at the emulator)."""
    return subprocess.run([TFPIPE, *args], cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=300)


def production(client: RestClient) -> int | None:
    try:
        return int(client.status(label="production")["model_version_status"][0]["version"])
    except ServeError:
        return None


def test_the_whole_pipeline_in_containers_on_gcs(gcs_env, bucket_name, tmp_path):
    bucket = gcs_env.bucket(bucket_name)
    bucket.blob("data/penguins.csv").upload_from_filename(PENGUINS_CSV)
    base, requests = f"gs://{bucket_name}/serving", f"gs://{bucket_name}/requests"
    home = f"{base}/penguins"
    cfg = config_lib.load(ROOT / "pipelines/configs/penguins.yaml", [
        f"ingest.source=gs://{bucket_name}/data/penguins.csv", f"runs_root={tmp_path}/runs", f"export.base={base}",
        "train.epochs=1", "train.model.hidden_units=[8]", "evaluate.thresholds={accuracy: {at_least: 0}}",
        "evaluate.slices=[]", f"pipeline.base_image={IMAGE}"])
    first = local.run(cfg, docker=True)
    assert f"Found image '{IMAGE}'" in (first / "pipeline.log").read_text()
    deployed = json.loads((first / "serve" / "deployment" / "deploy.json").read_text())
    assert deployed["deployed"], deployed  # infra-checked from gs:// and deployed where it is
    assert deployed["path"] == f"{home}/1"
    local.run(cfg, docker=True, step="export", after=str(first))  # version 2: the export step alone, in its container

    names = gcs_env.names(home)
    assert {"1/saved_model.pb", "2/saved_model.pb", "registry.json"} <= set(names)
    registry = json.loads(gcs_env.read(f"{home}/registry.json"))
    assert [v["version"] for v in registry["versions"]] == [1, 2]
    assert all(v["evaluation"]["verdict"] == "blessed" for v in registry["versions"])

    server = subprocess.Popen([TFPIPE, "serve", "--model-base", home, "--rest-port", "0", "--grpc-port", "0",
                               "--set", "serve.poll_seconds=0.2", "--set", "serve.shutdown_delay_seconds=0",
                               "--log-sampling-rate", "1.0", "--log-dir", requests],
                              cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        listening = announce.wait_for(server, 120, lines)
        assert listening is not None, "".join(lines)
        client = RestClient(listening.rest_url, "penguins")
        for command, expected in ((["promote", "--version", "1"], 1), (["promote", "--version", "2"], 2),
                                  (["rollback"], 1)):
            done = tfpipe("models", *command, "--base", home, "--alias", "production")
            assert done.returncode == 0, done.stderr
            until(lambda expected=expected: production(client) == expected, seconds=60)
        for _ in range(6):
            assert len(client.predict(instances=[VALID] * 4, label="production")["predictions"]) == 4
    finally:
        server.terminate()
        server.wait(timeout=120)
    # The serve step moves `candidate`; version 2 came from the export step alone, so it stays on version 1.
    assert json.loads(gcs_env.read(f"{home}/labels.json")) == {"candidate": 1, "production": 1}
    assert [n for n in gcs_env.names(requests) if n.endswith(".tfrecord")], gcs_env.names(requests)

    examples = next((first / "ingest").glob("**/schema.json")).parent
    done = tfpipe("monitor", "--log", requests, "--examples", str(examples), "--out", f"gs://{bucket_name}/monitor",
                  "--window", "1d")
    assert done.returncode in (0, 1), done.stderr  # 1: a threshold crossed (every request is the same row)
    findings = json.loads(gcs_env.read(f"gs://{bucket_name}/monitor/findings.json"))
    assert sum(w["requests"] for w in findings["windows"]) == 6  # one record per request (of 4 rows)
