"""End to end: the model server started with the registry's labels file answers by alias and follows a
promotion and a rollback without a restart."""

import time

import tensorflow as tf

from components.common.registry import Registry
from components.serve.client import RestClient
from components.serve.server import running
from tests.components.registry.conftest import blessed
from tests.components.serve.conftest import config


def save_scaler(folder, factor: float) -> None:
    """The smallest SavedModel the server loads: y = factor * x."""
    module = tf.Module()
    module.serve = tf.function(lambda x: {"y": x * factor},
                               input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})


def answer(client: RestClient, label: str) -> tuple[str, float]:
    version = client.status(label=label)["model_version_status"][0]["version"]
    return version, client.predict([1.0], label=label)["predictions"][0]


def until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition()


def test_a_server_on_the_labels_file_follows_promotion_and_rollback(tmp_path):
    home = tmp_path / "serving" / "penguins"
    for version in (1, 2):
        save_scaler(home / str(version), float(version * 10))
    registry = Registry(str(home))
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.95))
    registry.promote(1, "production")
    # The labelled versions must be loaded: with "latest" the server holds only version 2.
    with running(config(home, version_policy="all", labels_file=registry.labels_file)) as server:
        client = RestClient(server.rest_url, "penguins")
        until(lambda: server.manager.labels == {"production": 1})
        assert answer(client, "production") == ("1", 10.0)
        registry.promote(2, "production")
        until(lambda: server.manager.labels == {"production": 2})
        assert answer(client, "production") == ("2", 20.0)
        registry.rollback("production")
        until(lambda: server.manager.labels == {"production": 1})
        assert answer(client, "production") == ("1", 10.0)
