"""Export round trips: every signature against the Keras model, TF Serving's layout, warmup, method names."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.common import reader
from components.common.config import ExportConfig, IngestConfig
from components.common.model_loading import ModelError, load_model
from components.common.registry import Registry
from components.common.schema import Schema
from components.common.task import task_of
from components.data import write_penguins
from components.export import ExportError, run, step as export_step
from components.export.signatures import ServingModule
from components.ingest import run as ingest
from tests.components.conftest import trained

SAVED_MODEL_CLI = str(Path(sys.executable).with_name("saved_model_cli"))


def keras_answers(model_dir: str, examples: str, single_input: bool):
    """The Keras model's outputs and the test split's raw features, read independently of the export."""
    schema = Schema.read(examples)
    task = task_of(schema)
    model = load_model(model_dir)
    x, _ = next(iter(reader.dataset(examples, "test", schema, task, 1000, training=False, single_input=single_input)))
    return np.asarray(model(x, training=False)), x, task


def serialized_test_examples(examples: str) -> tf.Tensor:
    files = reader.files_of(examples, "test")
    return tf.constant([r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")])


def test_classifier_round_trip_through_every_signature(tmp_path, penguins_model, penguins_examples):
    home = tmp_path / "serving" / "penguins"
    result = run(ExportConfig(model_name="penguins"), penguins_model, penguins_examples, str(home))
    assert result.path == str(home / "1")
    assert result.version == 1
    assert set(result.signatures) == {"serving_default", "predict_examples", "classification"}
    assert result.max_difference <= 1e-5
    assert sorted(p.name for p in home.iterdir()) == ["1", "labels.json", "registry.json", "registry.lock"], \
        "staging left behind"
    registered = Registry(str(home)).get(1)
    # Kept with the version, not in the train output that a deleted run folder would take with it.
    assert registered.evaluation.model == f"{home}/1/assets.extra/keras/model.keras"
    assert (home / "1" / "assets.extra" / "keras" / "model.keras").read_bytes() == \
        (Path(penguins_model) / "model.keras").read_bytes()
    assert registered.lineage.examples == f"{home}/1/assets.extra"
    for name in ("stats.json", "schema.pbtxt", "stats.pb"):
        assert (home / "1" / "assets.extra" / name).read_bytes() == (Path(penguins_examples) / name).read_bytes()
    assert registered.lineage.data_span.endswith("penguins.csv")
    assert Schema.read(str(home / "1" / "assets.extra")) == Schema.read(penguins_examples)

    expected, x, task = keras_answers(penguins_model, penguins_examples, single_input=False)
    loaded = tf.saved_model.load(str(home / "1"))
    raw = loaded.signatures["serving_default"](**{k: tf.reshape(v, [-1]) for k, v in x.items()})
    np.testing.assert_allclose(raw["probabilities"].numpy(), expected, atol=1e-5)
    assert raw["class_ids"].numpy().tolist() == expected.argmax(axis=1).tolist()
    assert [c.decode() for c in raw["classes"].numpy()] == [task.classes[i] for i in expected.argmax(axis=1)]

    batch = serialized_test_examples(penguins_examples)
    from_examples = loaded.signatures["predict_examples"](inputs=batch)
    np.testing.assert_allclose(from_examples["probabilities"].numpy(), expected, atol=1e-5)
    classify = loaded.signatures["classification"](inputs=batch)
    np.testing.assert_allclose(classify["scores"].numpy(), expected, atol=1e-5)
    assert [c.decode() for c in classify["classes"].numpy()[0]] == list(task.classes)

    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", str(home / "1"), "--all"], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for name in ("serving_default", "predict_examples", "classification"):
        assert f"signature_def['{name}']" in shown.stdout
    assert "Method name is: tensorflow/serving/classify" in shown.stdout
    assert "inputs['island'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in shown.stdout

    second = run(ExportConfig(model_name="penguins"), penguins_model, penguins_examples, str(home))
    assert second.version == 2
    assert (home / "2" / "saved_model.pb").exists()


def test_warmup_requests_parse_as_prediction_logs(tmp_path, penguins_model, penguins_examples):
    home = tmp_path / "m"
    run(ExportConfig(model_name="m", warmup_examples=3), penguins_model, penguins_examples, str(home))
    records = list(tf.data.TFRecordDataset(str(home / "1" / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    request = log.predict_log.request
    assert request.model_spec.name == "m"
    assert request.model_spec.signature_name == "serving_default"
    schema = Schema.read(penguins_examples)
    assert set(request.inputs) == {f.name for f in schema.inputs}
    assert all(t.tensor_shape.dim[0].size == 3 for t in request.inputs.values())


def test_image_model_takes_uint8_images(tmp_path, digits_model, digits_examples):
    result = run(ExportConfig(), digits_model, digits_examples, str(tmp_path / "digits"))
    expected, x, _ = keras_answers(digits_model, digits_examples, single_input=True)
    answer = tf.saved_model.load(result.path).signatures["serving_default"](image=x)
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)


@pytest.mark.slow
def test_regressor_has_a_regress_signature(tmp_path, tmp_path_factory):
    examples = tmp_path / "examples"
    ingest(IngestConfig(source=str(write_penguins(tmp_path / "p.csv")), label="bill_length_mm"), str(examples))
    model = trained(tmp_path_factory, str(examples), "subclass", 1)
    result = run(ExportConfig(), model, str(examples), str(tmp_path / "serving"))
    assert set(result.signatures) == {"serving_default", "predict_examples", "regression"}
    loaded = tf.saved_model.load(result.path)
    batch = serialized_test_examples(str(examples))
    outputs = loaded.signatures["regression"](inputs=batch)["outputs"].numpy()
    predictions = loaded.signatures["predict_examples"](inputs=batch)["predictions"].numpy()
    assert outputs.shape == (int(batch.shape[0]),)
    assert np.allclose(outputs, predictions)
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", result.path, "--signature_def", "regression",
                            "--tag_set", "serve"], capture_output=True, text=True, timeout=120)
    assert "Method name is: tensorflow/serving/regress" in shown.stdout


def test_a_failed_self_check_publishes_nothing(tmp_path, penguins_model, other_penguins_model, penguins_examples,
                                               monkeypatch):
    """The SavedModel written holds another model (the penguins model with moved weights) than the Keras model
    exported: the self-check, at its real tolerance, names the first signature and how far its answers are."""
    schema = Schema.read(penguins_examples)
    task = task_of(schema)
    other = ServingModule(load_model(other_penguins_model, schema), schema, task)
    save = tf.saved_model.save

    def save_the_other_model(module, stage, signatures):
        save(other, stage, signatures=other.signatures())

    monkeypatch.setattr(tf.saved_model, "save", save_the_other_model)
    with pytest.raises(ExportError, match=r"signature 'serving_default' answers up to (\S+) away from the Keras "
                                          r"model \(tolerance 1e-05\); the export was not published") as raised:
        run(ExportConfig(), penguins_model, penguins_examples, str(tmp_path / "home"))
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").iterdir()), "something was published"

    batch = serialized_test_examples(penguins_examples)[:export_step.CHECK_EXAMPLES]
    x, _ = reader.parser(schema, task, False)(batch)
    apart = np.max(np.abs(np.asarray(load_model(other_penguins_model)(x, training=False))
                          - np.asarray(load_model(penguins_model)(x, training=False))))
    reported = float(re.search(r"answers up to (\S+) away", str(raised.value)).group(1))
    assert apart > 0.01
    assert reported == pytest.approx(apart, rel=1e-2)


def test_bad_inputs(tmp_path, digits_model, penguins_examples):
    with pytest.raises(ModelError, match="no model here"):
        run(ExportConfig(), str(tmp_path / "none"), penguins_examples, str(tmp_path / "home"))
    with pytest.raises(ModelError, match="the schema's inputs are"):
        run(ExportConfig(), digits_model, penguins_examples, str(tmp_path / "home"))
