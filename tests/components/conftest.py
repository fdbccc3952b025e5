"""Example data ingested once per session, and models trained on it, shared by the step tests."""

import numpy as np
import pytest

from components.common.config import ExportConfig, IngestConfig, ModelConfig, TensorBoardConfig, TrainConfig
from components.common.model_loading import load_model
from components.data import reviews, write_digits, write_penguins
from components.export import run as export
from components.ingest import run
from components.train import run as train


@pytest.fixture(scope="session")
def digits_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    run(IngestConfig(source=str(write_digits(root / "png"))), str(root / "examples"))
    return str(root / "examples")


@pytest.fixture(scope="session")
def penguins_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("penguins")
    run(IngestConfig(source=str(write_penguins(root / "penguins.csv")), label="species"), str(root / "examples"))
    return str(root / "examples")


@pytest.fixture(scope="session")
def reviews_examples(tmp_path_factory):
    """1,500 generated product reviews: an id, a product, a count, the review (text), the sentiment, and two
    lists: the order's tags (strings) and the reviewer's past ratings (ints)."""
    root = tmp_path_factory.mktemp("reviews")
    run(IngestConfig(source=str(reviews.write(root / "reviews.csv", count=1500)), label="sentiment",
                     key="review_id", list_delimiter=reviews.LIST_DELIMITER), str(root / "examples"))
    return str(root / "examples")


def trained(tmp_path_factory, examples: str, api: str, epochs: int) -> str:
    out = tmp_path_factory.mktemp(f"model-{api}")
    cfg = TrainConfig(epochs=epochs, batch_size=32, learning_rate=0.01, model=ModelConfig(api=api),
                      tensorboard=TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False))
    train(cfg, examples, str(out))
    return str(out)


@pytest.fixture(scope="session")
def penguins_model(tmp_path_factory, penguins_examples):
    """A functional model of the penguins (string and number features)."""
    return trained(tmp_path_factory, penguins_examples, "functional", 8)


@pytest.fixture(scope="session")
def reviews_model(tmp_path_factory, reviews_examples):
    """A functional model of the reviews: its text through the default encoding, beside a category and a count."""
    return trained(tmp_path_factory, reviews_examples, "functional", 4)


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory, digits_examples):
    """The chapter's Sequential CNN on the digits (one image input)."""
    return trained(tmp_path_factory, digits_examples, "sequential", 2)


def with_noise(tmp_path_factory, model_dir: str, scale: float) -> str:
    """A copy of the model with normal noise of `scale` added to every trainable weight: another model taking
    the same features, whose answers differ."""
    model = load_model(model_dir)
    noise = np.random.default_rng(0)
    for weight in model.trainable_weights:
        weight.assign(weight + noise.normal(0.0, scale, weight.shape).astype("float32"))
    out = tmp_path_factory.mktemp("model-other")
    model.save(out / "model.keras")
    return str(out)


@pytest.fixture(scope="session")
def other_penguins_model(tmp_path_factory, penguins_model):
    """The penguins model with noise on its weights."""
    return with_noise(tmp_path_factory, penguins_model, 0.5)


@pytest.fixture(scope="session")
def penguins_home(tmp_path_factory, penguins_model, penguins_examples):
    """`<base>/penguins` holding version 1 of the penguins classifier."""
    home = tmp_path_factory.mktemp("serving") / "penguins"
    export(ExportConfig(model_name="penguins"), penguins_model, penguins_examples, str(home))
    return home


@pytest.fixture(scope="session")
def reviews_home(tmp_path_factory, reviews_model, reviews_examples):
    home = tmp_path_factory.mktemp("serving") / "reviews"
    export(ExportConfig(model_name="reviews"), reviews_model, reviews_examples, str(home))
    return home


@pytest.fixture(scope="session")
def digits_home(tmp_path_factory, digits_model, digits_examples):
    home = tmp_path_factory.mktemp("serving") / "digits"
    export(ExportConfig(model_name="digits"), digits_model, digits_examples, str(home))
    return home
