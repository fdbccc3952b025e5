"""A team's own model module (`train.model.module`): the contract, its errors, and every step after train."""

import json
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from components.common import reader
from components.common.config import ExportConfig, ModelConfig, TensorBoardConfig, TrainConfig, load as load_config
from components.common.model_loading import load_model
from components.common.registry_commands import list_models
from components.common.schema import Schema
from components.common.task import task_of
from components.export import run as export
from components.train import run as train

QUIET = TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)

# Two of the six features, a registered layer of the module's own, a compile of its own with a registered loss.
OWN_MODEL = '''
import keras


@keras.saving.register_keras_serializable(package="team")
class Doubled(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package="team")
class SmoothedCrossentropy(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred * 0.98 + 0.02 / 3)


def build_model(inputs, encoded, task, params):
    x = keras.layers.Concatenate()([encoded["bill_length_mm"], encoded["island"]])
    x = Doubled()(keras.layers.Dense(params["units"], activation="relu")(x))
    output = keras.layers.Dense(len(task.classes), activation="softmax")(x)
    model = keras.Model({k: inputs[k] for k in ("bill_length_mm", "island")}, output)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=SmoothedCrossentropy(), metrics=["accuracy"])
    return model
'''


def module_config(tmp_path, text: str, **changes) -> TrainConfig:
    path = tmp_path / "team_model.py"
    path.write_text(textwrap.dedent(text))
    model = ModelConfig(module=str(path), params={"units": 8})
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "model": model, "tensorboard": QUIET, **changes})


@pytest.fixture(scope="module")
def own_model(tmp_path_factory, penguins_examples):
    """Trained from a module file that is deleted afterwards: what later steps load must travel with the model."""
    tmp = tmp_path_factory.mktemp("own")
    cfg = module_config(tmp, OWN_MODEL)
    out = tmp / "model"
    train(cfg, penguins_examples, str(out))
    (tmp / "team_model.py").unlink()
    return out


def test_the_module_travels_with_the_model_and_keeps_its_compile(own_model, penguins_examples):
    record = json.loads((own_model / "model_module.json").read_text())
    assert record["function"] == "build_model"
    assert record["params"] == {"units": 8}
    assert record["file"] == "model_module.py"
    assert "class Doubled" in (own_model / "model_module.py").read_text()
    training = json.loads((own_model / "training.json").read_text())
    assert training["module"]["sha256"] == record["sha256"]
    assert training["params"] == {"units": 8}
    model = keras.saving.load_model(own_model / "model.keras", safe_mode=True)  # compiled: the module's own
    assert type(model.optimizer).__name__ == "SGD"
    assert type(model.loss).__name__ == "SmoothedCrossentropy"
    assert sorted(model.input) == sorted(f.name for f in Schema.read(penguins_examples).inputs)
    assert "Doubled" in {type(layer).__name__ for layer in model.layers}


def test_a_fresh_process_loads_it_from_beside_the_model(own_model, penguins_examples):
    """evaluate, as the pipeline's next step runs it: a new interpreter that has never imported the module."""
    out = own_model.parent / "evaluation"
    done = subprocess.run([sys.executable, "-m", "components", "evaluate", "--examples", penguins_examples,
                           "--model", str(own_model), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["overall"]["accuracy"] > 0.4


def test_the_export_serves_without_the_module_and_equals_keras(own_model, penguins_examples, tmp_path):
    home = tmp_path / "team"
    export(ExportConfig(model_name="team"), str(own_model), penguins_examples, str(home))
    record = json.loads((own_model / "model_module.json").read_text())
    [version] = json.loads((home / "registry.json").read_text())["versions"]
    assert version["lineage"]["model_module"] == f"{record['module']} sha256:{record['sha256'][:12]}"
    assert f"team_model.py sha256:{record['sha256'][:12]}" in list_models(str(home))
    schema = Schema.read(penguins_examples)
    features, _ = next(iter(reader.dataset(penguins_examples, "test", schema, task_of(schema), 16, training=False)))
    expected = load_model(str(own_model), schema).predict(features, verbose=0)
    probe = ("import sys, json, numpy as np, tensorflow as tf\n"
             "loaded = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
             "specs = loaded.structured_input_signature[1]\n"
             "features = {k: tf.constant(v, specs[k].dtype) for k, v in json.loads(sys.stdin.read()).items()}\n"
             "print(json.dumps(loaded(**features)['probabilities'].numpy().tolist()))")
    rows = {k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().reshape(-1).tolist()]
            for k, v in features.items()}
    done = subprocess.run([sys.executable, "-c", probe, str(home / "1")], input=json.dumps(rows),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(json.loads(done.stdout.splitlines()[-1]), expected, atol=1e-5)


@pytest.mark.parametrize(("text", "expected"), [
    ("import keras\ndef build_model(:\n", "line 2: importing it failed: SyntaxError"),
    ("import keras\n\ndef build(inputs):\n    pass\n", "no function 'build_model'; its functions are ['build']"),
    ("def build_model(inputs, hyperparameters):\n    pass\n", "asks for ['hyperparameters']"),
    ("def build_model(inputs):\n    return {'y': inputs}\n", "returned dict; expected a functional or subclassed"),
    ("import keras\n\ndef build_model(inputs, encoded):\n"
     "    x = keras.layers.Concatenate()(list(encoded.values()))\n"
     "    return keras.Model(inputs, keras.layers.Dense(2, activation='softmax')(x))\n",
     "answers shape (32, 2) for 32 rows; expected (32, 3)"),
    ("import keras\n\ndef build_model(inputs, encoded, task):\n"
     "    x = keras.layers.Concatenate()(list(encoded.values()))\n"
     "    return keras.Model(inputs, keras.layers.Dense(len(task.classes))(x))\n",
     "not probabilities"),
    ("import keras\n\ndef build_model(inputs, encoded, task):\n"
     "    x = keras.layers.Concatenate()(list(encoded.values()))\n"
     "    x = keras.layers.Lambda(lambda t: t * 2)(x)\n"
     "    return keras.Model(inputs, keras.layers.Dense(len(task.classes), activation='softmax')(x))\n",
     "Keras cannot save and reload the model in safe mode"),
    ("def build_model(inputs):\n    raise RuntimeError('the team\\'s bug')\n",
     "build_model() failed: RuntimeError: the team's bug"),
], ids=["syntax", "no-function", "unknown-argument", "not-a-model", "output-shape", "logits", "lambda", "raises"])
def test_a_module_that_breaks_the_contract_is_named_and_nothing_is_written(tmp_path, penguins_examples, text,
                                                                           expected):
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="train.model.module .*team_model.py") as failure:
        train(module_config(tmp_path, text), penguins_examples, str(out))
    assert expected in str(failure.value)
    assert not out.exists()


def test_the_command_line_exits_2_for_a_missing_module_or_function(tmp_path, penguins_examples):
    config = tmp_path / "run.yaml"
    config.write_text("train: {model: {module: models/absent.py}}\n")
    missing = subprocess.run([sys.executable, "-m", "components", "train", "--config", str(config), "--examples",
                              penguins_examples, "--out", str(tmp_path / "out")], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2
    assert f"train.model.module: {tmp_path}/models/absent.py: no such file" in missing.stderr
    assert not (tmp_path / "out").exists()


def test_a_relative_module_is_read_from_beside_the_config_and_its_hash_joins_the_config(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.py").write_text("def build_model(inputs):\n    pass\n")
    (tmp_path / "run.yaml").write_text("ingest: {source: data.csv}\n"
                                       "train: {model: {module: models/m.py, params: {units: 4}}}\n")
    first = load_config(tmp_path / "run.yaml")
    assert first.train.model.source.file == "m.py"
    assert first.train.model.source.text.startswith("def build_model")
    (tmp_path / "models" / "m.py").write_text("def build_model(inputs, params):\n    pass\n")
    second = load_config(tmp_path / "run.yaml")
    assert first.train.model.source.sha256 != second.train.model.source.sha256
    assert first.sections_json("train") != second.sections_json("train")  # a step-cache miss
    assert json.loads(second.to_json())["train"]["model"]["params"] == {"units": 4}


def test_custom_loop_and_warm_start_from_a_model_of_the_same_module(tmp_path, penguins_examples, own_model):
    source = tmp_path / "copy"
    shutil.copytree(own_model, source)
    cfg = module_config(tmp_path, OWN_MODEL, loop="custom", warm_start=str(source / "model.keras"))
    result = train(cfg, penguins_examples, str(tmp_path / "model"))
    training = json.loads((tmp_path / "model" / "training.json").read_text())
    assert training["loop"] == "custom"
    assert training["warm_start"]["layers"] >= 3
    assert result.metrics["accuracy"] > 0.4
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert all(np.isfinite(history["loss"]))


def test_a_module_text_changed_inside_a_config_is_refused(tmp_path):
    """The text travels with its hash: a config.json whose module text was edited by hand is not run as if whole."""
    from components.common.config import RunConfig
    from components.common.module_text import ModuleTextError

    (tmp_path / "m.py").write_text("def build_model(inputs):\n    pass\n")
    (tmp_path / "run.yaml").write_text("ingest: {source: data.csv}\ntrain: {model: {module: m.py}}\n")
    plain = json.loads(load_config(tmp_path / "run.yaml").to_json())
    plain["train"]["model"]["source"]["text"] += "import os\n"
    with pytest.raises(ModuleTextError, match=r"train.model.source: the module's text does not match its sha256"):
        RunConfig.from_json(json.dumps(plain))
