"""The cluster rehearsal on Cloud Storage: the whole DAG, every step in the component image, with the source and
the serving base (versions, registry, labels, evaluations) on gs:// in the emulator (tests/gcs.py), and what it
wrote read back from there by the registry, `tfpipe serve` and `tfpipe monitor`."""

import json
import os

import pytest

from components.common import config as config_lib
from components.data import PENGUINS_CSV
from pipelines.targets import local
from tests.conftest import ROOT

IMAGE = os.environ.get("TFPIPE_IMAGE", "tfpipe-components:latest")

pytestmark = pytest.mark.docker


def test_the_whole_pipeline_in_containers_on_gcs(gcs_env, bucket_name, tmp_path):
    bucket = gcs_env.bucket(bucket_name)
    bucket.blob("data/penguins.csv").upload_from_filename(PENGUINS_CSV)
    base = f"gs://{bucket_name}/serving"
    cfg = config_lib.load(ROOT / "pipelines/configs/penguins.yaml", [
        f"ingest.source=gs://{bucket_name}/data/penguins.csv", f"runs_root={tmp_path}/runs", f"export.base={base}",
        "train.epochs=1", "train.model.hidden_units=[8]", "train.tensorboard.histogram_freq=0",
        "evaluate.thresholds={accuracy: {at_least: 0}}", "evaluate.slices=[]", "pipeline.cache=true",
        f"pipeline.base_image={IMAGE}"])
    first = local.run(cfg, docker=True)
    assert f"Found image '{IMAGE}'" in (first / "pipeline.log").read_text()
    names = gcs_env.names(base)
    print(names)
    assert "penguins/1/saved_model.pb" in names
