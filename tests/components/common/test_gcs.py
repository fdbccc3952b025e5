"""Steps on gs://, against Cloud Storage's emulator: each client through its own code path (tests/gcs.py says
how): Arrow reads the source, TensorFlow's gs:// file system writes and reads the examples, the metrics, the
model, its checkpoints, logs and backup, Beam's GCS IO reads the examples for the Beam engine."""

import json
from pathlib import Path

import numpy as np
import pytest

from components.common import io
from components.common.config import (
    BeamConfig,
    EvaluateConfig,
    IngestConfig,
    ModelConfig,
    TensorBoardConfig,
    Threshold,
    TrainConfig,
)
from components.common.model_loading import load_model
from components.data import PENGUINS_CSV
from components.evaluate import run as evaluate
from components.ingest import run as ingest
from components.train import run as train
from tests.conftest import read_examples


def copy_up(folder: str, uri: str) -> None:
    """A local folder copied to gs:// with TensorFlow's file system (what a step's outputs are written with)."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            io.write_bytes(f"{uri}/{path.relative_to(folder).as_posix()}", path.read_bytes())


def test_ingest_reads_a_source_on_gcs_and_writes_its_examples_there(gcs_env, bucket_name, penguins_examples):
    bucket = gcs_env.bucket(bucket_name)
    bucket.blob("raw/penguins.csv").upload_from_filename(PENGUINS_CSV)
    out = f"gs://{bucket_name}/examples"
    ingest(IngestConfig(source=f"gs://{bucket_name}/raw/penguins.csv", label="species"), out)

    remote, local = read_examples(out), read_examples(penguins_examples)
    for split in ("train", "eval", "test"):
        assert sorted(remote[split]["body_mass_g"].tolist()) == sorted(local[split]["body_mass_g"].tolist())
    schema, local_schema = (json.loads(gcs_env.read(f"{out}/schema.json")),
                            json.loads(Path(penguins_examples, "schema.json").read_text()))
    assert schema["features"] == local_schema["features"]
    assert schema["source"]["files"] == [f"gs://{bucket_name}/raw/penguins.csv"]
    assert not [n for n in gcs_env.names(f"gs://{bucket_name}") if ".staging-" in n]  # published, stage removed


def test_the_beam_engine_evaluates_examples_on_gcs_as_the_local_engine_does(gcs_env, bucket_name, tmp_path,
                                                                           penguins_model, penguins_examples):
    gcs_env.bucket(bucket_name)
    examples, out = f"gs://{bucket_name}/examples", f"gs://{bucket_name}/evaluate"
    copy_up(penguins_examples, examples)
    cfg = EvaluateConfig(thresholds={"accuracy": Threshold(at_least=0.6)}, batch_size=8)
    local = evaluate(cfg, penguins_model, penguins_examples, str(tmp_path / "local"), str(tmp_path / "serving"))
    in_process = BeamConfig(workers=1, temp_location=f"gs://{bucket_name}/beam-temp",
                            options=("--direct_running_mode=in_memory",))
    beam = evaluate(EvaluateConfig(thresholds=cfg.thresholds, batch_size=8, engine="beam"), penguins_model,
                    examples, out, str(tmp_path / "serving"), in_process)
    assert beam.metrics == local.metrics
    written, local_written = (json.loads(gcs_env.read(f"{out}/metrics.json")),
                              json.loads((tmp_path / "local/metrics.json").read_text()))
    assert written["examples"] == examples
    assert {**written, "examples": ""} == {**local_written, "examples": ""}
    assert gcs_env.names(f"gs://{bucket_name}/beam-temp") == []  # the pass's state was written there, then removed
    assert np.isclose(beam.metrics["accuracy"], local.metrics["accuracy"])


def test_training_writes_its_model_checkpoints_logs_and_history_to_gcs(gcs_env, bucket_name, penguins_examples):
    gcs_env.bucket(bucket_name)
    out = f"gs://{bucket_name}/train"
    cfg = TrainConfig(epochs=2, batch_size=32, model=ModelConfig(hidden_units=(8,)),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0))
    metrics = train(cfg, penguins_examples, out, label="species").metrics
    names = gcs_env.names(out)
    assert {"model.keras", "metrics.json", "history.json", "training.json"} <= set(names)
    assert [n for n in names if n.startswith("logs/") and ".tfevents." in n]
    assert not [n for n in names if n.startswith("backup/")]  # removed once the run finished
    assert len(json.loads(gcs_env.read(f"{out}/history.json"))["loss"]) == 2
    assert json.loads(gcs_env.read(f"{out}/metrics.json"))["accuracy"] == metrics["accuracy"]
    assert load_model(out).count_params() > 0


def test_a_folder_staged_here_is_uploaded_whole_its_top_files_last(gcs_env, bucket_name, tmp_path):
    """`staged_dir(..., local=True)`: written on this machine, uploaded once it is whole (the deepest files
    first, so `saved_model.pb` comes after its variables); a failure uploads nothing and leaves no stage."""
    bucket = gcs_env.bucket(bucket_name)
    final = f"gs://{bucket_name}/serving/m/1"
    with io.staged_dir(final, local=True) as stage:
        assert not io.is_remote(stage)
        Path(stage, "variables").mkdir()
        Path(stage, "variables", "variables.index").write_bytes(b"index")
        Path(stage, "saved_model.pb").write_bytes(b"graph")
    assert not Path(stage).exists()
    blobs = {b.name.removeprefix("serving/m/1/"): b for b in bucket.list_blobs(prefix="serving/m/1/")
             if not b.name.endswith("/")}  # TensorFlow's file system marks each folder with an empty object
    assert set(blobs) == {"saved_model.pb", "variables/variables.index"}
    assert blobs["saved_model.pb"].generation > blobs["variables/variables.index"].generation
    staged = []

    def failing_export() -> None:
        with io.staged_dir(f"gs://{bucket_name}/serving/m/2", local=True) as stage:
            staged.append(stage)
            Path(stage, "saved_model.pb").write_bytes(b"graph")
            raise RuntimeError("the export failed")

    with pytest.raises(RuntimeError):
        failing_export()
    assert not Path(staged[0]).exists()
    assert not list(bucket.list_blobs(prefix="serving/m/2"))
