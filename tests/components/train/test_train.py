"""Training with each model API, read back as a user would: the model file, the weights, TensorBoard."""

import csv
import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator as ea

from components.common import reader
from components.common.config import ModelConfig, TensorBoardConfig, TrainConfig
from components.common.errors import ExamplesError
from components.common.model_loading import load_model
from components.common.schema import Schema
from components.common.task import task_of
from components.train import TrainError, models, run

QUICK = TrainConfig(epochs=2, batch_size=64, tensorboard=TensorBoardConfig(profile_batch=()))


def accumulate(folder: Path) -> ea.EventAccumulator:
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.TENSORS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize(("api", "data"), [("sequential", "digits"), ("functional", "digits"),
                                       ("subclass", "digits"), ("functional", "penguins"),
                                       ("subclass", "penguins")])
def test_each_api_trains_saves_and_reloads(tmp_path, api, data, request):
    examples = request.getfixturevalue(f"{data}_examples")
    cfg = TrainConfig(epochs=2, batch_size=64, model=ModelConfig(api=api, residual=True, hidden_units=(16, 16)),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0))
    result = run(cfg, examples, str(tmp_path))
    assert result.epochs == 2
    assert len(list((tmp_path / "checkpoints").glob("epoch-*.weights.h5"))) == 2
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert "val_accuracy" in history
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1]  # one row per epoch
    assert [float(row["loss"]) for row in rows] == history["loss"]
    assert [float(row["val_accuracy"]) for row in rows] == history["val_accuracy"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == result.metrics
    assert {"loss", "accuracy"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values()), metrics

    schema = Schema.read(examples)
    task = task_of(schema)
    data_ = reader.dataset(examples, "eval", schema, task, 64, training=False,
                           single_input=models.is_single_input(cfg.model))
    loaded = load_model(str(tmp_path))
    summary = (tmp_path / "model_summary.txt").read_text()
    first_column = " ".join(line.split("│")[1] for line in summary.splitlines() if line.startswith("│"))
    listed = Counter(re.findall(r"\((\w+)\)", first_column))  # "name (Type)", wrapped over lines where long
    assert listed == Counter(type(layer).__name__ for layer in loaded.layers)  # every layer of the model saved
    assert f"Total params: {loaded.count_params():,} " in summary
    fresh = models.build(schema, task, cfg.model)
    fresh.load_weights(sorted((tmp_path / "checkpoints").glob("*.h5"))[-1])
    for model in (loaded, fresh):
        from components.train.step import compile_model

        compile_model(model, cfg, task)
        metrics = model.evaluate(data_, verbose=0, return_dict=True)
        assert metrics["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
        assert metrics["loss"] == pytest.approx(result.metrics["loss"], rel=1e-5)


def test_digits_cnn_learns(tmp_path, digits_examples):
    cfg = TrainConfig(epochs=6, batch_size=32, learning_rate=0.003, model=ModelConfig(api="sequential"),
                      tensorboard=TensorBoardConfig(profile_batch=()))
    assert run(cfg, digits_examples, str(tmp_path)).metrics["accuracy"] > 0.9


def test_tensorboard_logs_read_back(tmp_path, digits_examples):
    cfg = TrainConfig(epochs=3, batch_size=32, lr_schedule="step", lr_boundaries=(0,), lr_values=(0.0005,),
                      model=ModelConfig(api="functional"),
                      tensorboard=TensorBoardConfig(histogram_freq=1, profile_batch=(2, 4)))
    run(cfg, digits_examples, str(tmp_path))
    logs = tmp_path / "logs"
    train = accumulate(logs / "train")
    validation = accumulate(logs / "validation")
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert len(train.Tensors(tag)) == 3, tag
    rates = [float(tf.make_ndarray(e.tensor_proto)) for e in train.Tensors("epoch_learning_rate")]
    assert rates == pytest.approx([0.001, 0.0005, 0.0005])
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert len(validation.Tensors(tag)) == 3, tag
    histograms = {t for t in train.Tags()["tensors"] if train.SummaryMetadata(t).plugin_data.plugin_name
                  == "histograms"}
    assert {f"{layer}/{weight}/histogram" for layer in ("dense_0", "dense_1", "probabilities")
            for weight in ("kernel", "bias")} <= histograms  # the weights of the functional model's dense layers
    assert [len(train.Tensors(t)) for t in sorted(histograms)] == [3] * len(histograms)  # histogram_freq=1
    assert "keras" in train.Tags()["tensors"], "conceptual graph not written"
    # The op graph, as the Graphs dashboard reads it (tf.summary.trace_export's plugin).
    assert "model" in accumulate(logs / "graph").PluginTagToContent("graph_run_metadata_graph")
    confusion = accumulate(logs / "confusion_matrix")
    assert len(confusion.Tensors("confusion_matrix")) == 3
    samples = accumulate(logs / "samples")
    assert samples.Tensors("training_samples")
    assert list(logs.glob("**/plugins/profile/*/*.xplane.pb")), "no profile trace"


def test_schedules():
    from components.train.callbacks import learning_rate

    step = learning_rate(TrainConfig(learning_rate=0.2, lr_schedule="step", lr_boundaries=(10, 20, 50),
                                     lr_values=(0.02, 0.01, 0.005)))
    assert [step(e) for e in (0, 10, 11, 21, 51)] == [0.2, 0.2, 0.02, 0.01, 0.005]
    cosine = learning_rate(TrainConfig(learning_rate=1.0, lr_schedule="cosine", epochs=4))
    assert [cosine(e) for e in range(5)] == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.0])
    exponential = learning_rate(TrainConfig(learning_rate=1.0, lr_schedule="exponential", lr_decay=0.5))
    assert exponential(3) == 0.125


def test_nan_loss_names_epoch_and_step_and_leaves_nothing_behind(tmp_path, penguins_examples):
    cfg = TrainConfig(epochs=3, optimizer="sgd", learning_rate=1e30, model=ModelConfig(dropout=0.0),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, confusion_matrix=False))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match=r"loss became nan at epoch 1, step \d+"):
        run(cfg, penguins_examples, str(out))
    assert [p.name for p in out.iterdir()] == ["notes.txt"], "a failed run's files stay, or a file it found is gone"
    with pytest.raises(TrainError, match="loss became nan"):
        run(cfg, penguins_examples, str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_a_config_whose_label_is_not_the_examples_label(tmp_path, penguins_examples):
    with pytest.raises(TrainError, match=r"the examples' label is 'species' but the config's ingest.label is 'island'"):
        run(QUICK, penguins_examples, str(tmp_path / "out"), label="island")
    assert not (tmp_path / "out").exists()


def test_sequential_needs_one_image(tmp_path, penguins_examples):
    with pytest.raises(TrainError, match="api=sequential takes exactly one image feature"):
        run(TrainConfig(model=ModelConfig(api="sequential")), penguins_examples, str(tmp_path))


def test_label_with_more_classes_than_the_schema_lists(tmp_path, penguins_examples):
    copy = tmp_path / "examples"
    shutil.copytree(penguins_examples, copy)
    schema = json.loads((copy / "schema.json").read_text())
    label = next(f for f in schema["features"] if f["name"] == "species")
    label["stats"]["top"] = label["stats"]["top"][:2]
    (copy / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ExamplesError, match="has 3 classes but the schema lists only 2"):
        run(QUICK, str(copy), str(tmp_path / "out"))


def test_missing_split(tmp_path, penguins_examples):
    copy = tmp_path / "examples"
    shutil.copytree(penguins_examples, copy)
    shutil.rmtree(copy / "eval")
    with pytest.raises(ExamplesError, match="eval: no TFRecord shards"):
        run(QUICK, str(copy), str(tmp_path / "out"))
