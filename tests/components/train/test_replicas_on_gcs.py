"""Multi-worker training as a Vertex CustomJob runs it: two containers of the component image, each with the
`CLUSTER_SPEC` (and `TF_CONFIG`) Vertex sets, the examples, checkpoints and model on gs:// in the emulator. One
container is killed mid-epoch; the job is started again, as Vertex restarts it, and resumes from the backup on
gs:// with no finished epoch repeated."""

import json
import os
import time

import pytest

from components.common.schema import Schema
from components.train import launcher
from pipelines.targets.local import GOOGLE_FILES, google_environment
from tests.components.common.test_gcs import copy_up

IMAGE = os.environ.get("TFPIPE_IMAGE", "tfpipe-components:latest")
EPOCHS = 3

pytestmark = pytest.mark.docker


def start_job(client, examples: str, out: str) -> list:
    """The job's two replicas, each a container on the host's network (their ports on 127.0.0.1)."""
    google = google_environment()
    volumes = {path: {"bind": path, "mode": "ro"} for path in {google[n] for n in GOOGLE_FILES if n in google}}
    command = ["python", "-m", "components", "train", "--examples", examples, "--out", out,
               f"--set=train.epochs={EPOCHS}", "--set=train.batch_size=8", "--set=train.model.hidden_units=[8]",
               "--set=train.tensorboard.profile_batch=[]", "--set=train.tensorboard.histogram_freq=0"]
    return [client.containers.run(IMAGE, command, detach=True, network_mode="host", volumes=volumes,
                                  user=f"{os.getuid()}:{os.getgid()}",
                                  environment={"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "3", **google, **replica})
            for replica in launcher.vertex_environments([1, 1])]


def backup_epoch(gcs, out: str) -> int:
    try:
        return json.loads(gcs.read(f"{out}/backup/training_metadata.json"))["epoch"]
    except Exception:  # noqa: BLE001 (not written yet, or being replaced)
        return 0


def test_two_vertex_replicas_in_containers_resume_on_gcs_after_one_is_killed(gcs_env, bucket_name,
                                                                             penguins_examples):
    import docker

    client = docker.from_env()
    gcs_env.bucket(bucket_name)
    examples, out = f"gs://{bucket_name}/examples", f"gs://{bucket_name}/train"
    copy_up(penguins_examples, examples)
    assert Schema.read(examples).label == "species"

    first, second = start_job(client, examples, out), []
    try:
        deadline = time.monotonic() + 300
        while backup_epoch(gcs_env, out) < 1:
            assert time.monotonic() < deadline, first[0].logs().decode()[-3000:]
            assert all(c.reload() or c.status == "running" for c in first), first[0].logs().decode()[-3000:]
            time.sleep(0.2)
        first[1].kill()  # the worker, mid-epoch
        first[0].kill()  # and the chief, which Vertex stops with the failed job before it restarts it
        resumed_at = backup_epoch(gcs_env, out)
        assert 1 <= resumed_at < EPOCHS

        second = start_job(client, examples, out)
        codes = [c.wait(timeout=600)["StatusCode"] for c in second]
        logs = second[0].logs().decode()
        assert codes == [0, 0], logs[-3000:]
    finally:
        for container in [*first, *second]:
            container.remove(force=True)
    assert f"resuming after epoch {resumed_at} " in logs
    training = json.loads(gcs_env.read(f"{out}/training.json"))
    assert training["epochs_run"] == EPOCHS - resumed_at, "finished epochs were repeated"
    assert training["workers"] == 2
    assert len(json.loads(gcs_env.read(f"{out}/history.json"))["loss"]) == EPOCHS
    names = gcs_env.names(out)
    assert "model.keras" in names
    assert not [n for n in names if n.startswith("backup/")], "the backup outlives a finished run"
