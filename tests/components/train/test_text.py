"""A text feature's default encoding: adapted on the train split, inside the model, served as raw text."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from components.common.config import IngestConfig, ModelConfig, ServeConfig, TensorBoardConfig, TrainConfig
from components.data import reviews
from components.ingest import run as ingest
from components.serve.client import RestClient, ServeError
from components.serve.server import running
from components.train import TrainError, run as train
from tests.conftest import ROOT
from tests.served import assert_served_as_keras

QUIET = TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)


def test_the_default_encoding_learns_from_the_words(reviews_model):
    assert json.loads((Path(reviews_model) / "metrics.json").read_text())["accuracy"] > 0.85
    model = keras.saving.load_model(Path(reviews_model) / "model.keras", safe_mode=True)
    vocabulary = model.get_layer("review_vectorize").get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"]
    assert {"great", "terrible", "the"} <= set(vocabulary)
    assert model.get_layer("review_embed").mask_zero
    assert type(model.get_layer("review_mean")).__name__ == "GlobalAveragePooling1D"


def test_served_text_over_rest_and_grpc_equals_keras(reviews_model, reviews_examples, reviews_home):
    sent = assert_served_as_keras(str(reviews_home), "reviews", reviews_examples, reviews_model)
    assert all(len(row["review"].split()) > 3 for row in sent)  # whole texts travel, not tokens
    with running(ServeConfig(model_base=str(reviews_home), rest_port=0, grpc_port=0)) as server:
        rest = RestClient(server.rest_url, "reviews")
        try:
            with pytest.raises(ServeError, match=r"input 'review': expected strings") as refused:
                rest.predict(instances=[{**sent[0], "review": 5}])
            unknown = rest.predict(instances=[{**sent[0], "review": "zyzzyva qwerty"}])  # no word it knows
        finally:
            rest.close()
    assert refused.value.code == 400
    assert len(unknown["predictions"][0]["probabilities"]) == 2


@pytest.mark.parametrize("api", ["sequential", "subclass"])
def test_apis_that_cannot_hold_an_adapted_vocabulary_say_what_to_use(api, reviews_examples, tmp_path):
    cfg = TrainConfig(epochs=1, model=ModelConfig(api=api), tensorboard=QUIET)
    with pytest.raises(TrainError, match=rf"train.model.api={api}: the text feature\(s\) \['review'\] need a "
                                         r"TextVectorization .* set train.model.api=functional or build the model "
                                         r"in train.model.module"):
        train(cfg, reviews_examples, str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_a_module_gets_the_default_text_encoding_and_a_bag_of_tokens_without_embeddings(reviews_examples, tmp_path):
    module = tmp_path / "m.py"
    module.write_text(textwrap.dedent('''
        import keras


        def build_model(inputs, encoded, task):
            output = keras.layers.Dense(len(task.classes), activation="softmax")(encoded["review"])
            return keras.Model({"review": inputs["review"]}, output)
    '''))
    cfg = TrainConfig(epochs=2, batch_size=32, model=ModelConfig(module=str(module), embedding_dim=0),
                      learning_rate=0.05, tensorboard=QUIET)
    result = train(cfg, reviews_examples, str(tmp_path / "model"))
    model = keras.saving.load_model(tmp_path / "model" / "model.keras", safe_mode=True)
    assert model.get_layer("review_vectorize").get_config()["output_mode"] == "multi_hot"
    assert result.metrics["accuracy"] > 0.85


def test_a_warm_start_needs_the_same_text_vocabulary(reviews_model, reviews_examples, tmp_path):
    same = TrainConfig(epochs=1, batch_size=32, warm_start=f"{reviews_model}/model.keras", tensorboard=QUIET)
    train(same, reviews_examples, str(tmp_path / "same"))
    assert json.loads((tmp_path / "same" / "training.json").read_text())["warm_start"]["layers"] > 0
    other = tmp_path / "other"
    ingest(IngestConfig(source=str(reviews.write(tmp_path / "r.csv", count=300)), label="sentiment",
                        key="review_id", list_delimiter=reviews.LIST_DELIMITER), str(other))
    with pytest.raises(TrainError, match=r"text layer 'review_vectorize' was adapted on this train split to a "
                                         r"vocabulary that is not the warm-start model's"):
        train(same, str(other), str(tmp_path / "changed"))


@pytest.mark.slow
def test_two_workers_adapt_the_same_vocabulary_and_train_the_default_encoding(reviews_examples, tmp_path):
    out = tmp_path / "model"
    done = subprocess.run([sys.executable, "-m", "components", "train", "--config",
                           str(ROOT / "pipelines/configs/reviews_text.yaml"), "--set", "train.epochs=1",
                           "--set", "train.model.module=", "--examples", reviews_examples, "--out", str(out),
                           "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    training = json.loads((out / "training.json").read_text())
    assert training["workers"] == 2
    assert training["module"] is None
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert "great" in model.get_layer("review_vectorize").get_vocabulary()
