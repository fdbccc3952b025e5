"""List features through the model: ragged inputs, pooled default encodings in every API, and served lists over
REST and gRPC, with a request of the wrong shape or type refused by the input's name."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.config import (
    ExportConfig,
    IngestConfig,
    ModelConfig,
    ServeConfig,
    TensorBoardConfig,
    TrainConfig,
)
from components.common.model_loading import load_model
from components.common.schema import LIST_PADDING, Schema
from components.export import run as export
from components.ingest import run as ingest
from components.serve.client import GrpcClient, RestClient, ServeError
from components.serve.server import running
from components.train import run as train
from tests.components.ingest.test_lists import orders, write_jsonl

QUIET = TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orders")
    ingest(IngestConfig(source=str(write_jsonl(folder / "o.jsonl", orders(300))), label="label", key="id"),
           str(folder / "examples"))
    return str(folder / "examples")


@pytest.fixture(scope="module")
def home(tmp_path_factory, examples):
    model = tmp_path_factory.mktemp("model")
    train(TrainConfig(epochs=3, batch_size=16, learning_rate=0.02, tensorboard=QUIET), examples, str(model))
    base = tmp_path_factory.mktemp("serving") / "orders"
    export(ExportConfig(model_name="orders"), str(model), examples, str(base))
    return str(model), str(base)


def ragged(rows, dtype) -> tf.RaggedTensor:
    return tf.ragged.constant(rows, dtype=dtype, ragged_rank=1) if any(rows) else \
        tf.RaggedTensor.from_row_lengths(tf.zeros([0], dtype), [0] * len(rows))


ROWS = [{"id": 1, "tags": ["red", "big"], "weights": [1.5, 2.0, 9.25], "counts": [3, 1], "x": 0.25},
        {"id": 2, "tags": [], "weights": [4.0], "counts": [], "x": 0.5},
        {"id": 3, "tags": ["small"], "weights": [], "counts": [8], "x": 0.75}]


def keras_answers(model_dir: str, examples: str, rows: list[dict]) -> np.ndarray:
    model = load_model(model_dir, Schema.read(examples))
    return model({"id": tf.constant([[r["id"]] for r in rows], tf.int64),
                  "x": tf.constant([[r["x"]] for r in rows], tf.float32),
                  "tags": ragged([r["tags"] for r in rows], tf.string),
                  "weights": ragged([r["weights"] for r in rows], tf.float32),
                  "counts": ragged([r["counts"] for r in rows], tf.int64)}).numpy()


def test_the_default_encodings_pool_each_list_and_the_model_reads_them_ragged(home, examples):
    model_dir, _ = home
    model = keras.saving.load_model(f"{model_dir}/model.keras", safe_mode=True)
    assert type(model.get_layer("tags_embed")).__name__ == "MeanEmbedding"
    assert type(model.get_layer("weights_summary")).__name__ == "ListSummary"
    assert model.get_layer("tags_lookup").get_vocabulary()[1:] == [v for v, _ in
                                                                    Schema.read(examples).feature("tags").stats["top"]]
    answers = keras_answers(model_dir, examples, ROWS)
    # A list's answer depends on its values, not on what other rows of the batch hold.
    for i, row in enumerate(ROWS):
        np.testing.assert_allclose(keras_answers(model_dir, examples, [row])[0], answers[i], atol=1e-6)
    # Tags decide the label (it is "yes" exactly when "red" is a tag): the pooled embedding carries them.
    red, plain = ({**ROWS[1], "tags": tags} for tags in (["red"], ["blue"]))
    yes = Schema.read(examples).feature("label").vocabulary.index("yes")
    assert keras_answers(model_dir, examples, [red])[0, yes] > keras_answers(model_dir, examples, [plain])[0, yes]


@pytest.mark.parametrize("api", ["subclass", "functional"])
def test_every_api_with_a_bag_of_values_trains_and_reloads(api, examples, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=32, model=ModelConfig(api=api, embedding_dim=0), tensorboard=QUIET)
    train(cfg, examples, str(tmp_path / "model"))
    model = load_model(str(tmp_path / "model"), Schema.read(examples))
    answers = keras_answers(str(tmp_path / "model"), examples, ROWS)
    assert answers.shape == (3, 2)
    np.testing.assert_allclose(answers.sum(axis=1), 1.0, atol=1e-5)
    if api == "functional":
        assert model.get_layer("tags_bag").get_config()["output_mode"] == "multi_hot"


def test_served_lists_over_rest_and_grpc_answer_as_keras(home, examples):
    model_dir, base = home
    expected = keras_answers(model_dir, examples, ROWS)
    columns = {"id": np.array([r["id"] for r in ROWS]), "x": np.array([r["x"] for r in ROWS], np.float32),
               "tags": np.array([[b"red", b"big", b""], [b"", b"", b""], [b"small", b"", b""]], dtype=object),
               "weights": np.array([[1.5, 2.0, 9.25], [4.0, np.nan, np.nan], [np.nan] * 3], np.float32),
               "counts": np.array([[3, 1], [LIST_PADDING["int"]] * 2, [8, LIST_PADDING["int"]]])}
    with running(ServeConfig(model_base=base, rest_port=0, grpc_port=0)) as server:
        rest, remote = RestClient(server.rest_url, "orders"), GrpcClient(server.grpc_target, "orders")
        try:
            rows = rest.predict(instances=ROWS)["predictions"]
            by_columns = rest.predict(inputs={k: [r[k] for r in ROWS] for k in ROWS[0]})["outputs"]
            # A null list, or one left out, is an empty list.
            gaps = rest.predict(instances=[{**ROWS[1], "counts": None}, {k: v for k, v in ROWS[1].items()
                                                                           if k != "counts"}])["predictions"]
            by_grpc = remote.predict(columns)
        finally:
            rest.close()
            remote.close()
    np.testing.assert_allclose([r["probabilities"] for r in rows], expected, atol=1e-5)
    np.testing.assert_allclose(by_columns["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose([r["probabilities"] for r in gaps], [expected[1], expected[1]], atol=1e-5)
    np.testing.assert_allclose(by_grpc["probabilities"], expected, atol=1e-5)


def test_a_request_with_the_wrong_shape_or_type_of_list_is_refused_by_name(home):
    _, base = home
    bad_rest = [({**ROWS[0], "tags": "red"}, "input 'tags': example 0: expected a list of values, got 'red'"),
                ({**ROWS[0], "counts": [1, "two"]}, "input 'counts': expected int64 values"),
                ({**ROWS[0], "weights": [[1.0]]}, "input 'weights': nested deeper than its shape"),
                ({**ROWS[0], "x": [0.5]}, "input 'x'")]
    good = {"id": np.array([1]), "x": np.array([0.5], np.float32), "tags": np.array([[b"red"]], dtype=object),
            "weights": np.array([[1.0]], np.float32), "counts": np.array([[1]])}
    bad_grpc = [({**good, "tags": np.array([b"red"], dtype=object)},
                 r"input 'tags': shape \[1\] does not fit \[-1, -1\]"),
                ({**good, "weights": np.array([[1.0, np.inf]], np.float32)}, r"input 'weights': .*finite")]
    with running(ServeConfig(model_base=base, rest_port=0, grpc_port=0)) as server:
        rest, remote = RestClient(server.rest_url, "orders"), GrpcClient(server.grpc_target, "orders")
        try:
            for instance, message in bad_rest:
                with pytest.raises(ServeError, match=message) as refused:
                    rest.predict(instances=[instance])
                assert refused.value.code == 400
            for inputs, message in bad_grpc:
                with pytest.raises(ServeError, match=message) as refused:
                    remote.predict(inputs)
                assert refused.value.code == "INVALID_ARGUMENT"
        finally:
            rest.close()
            remote.close()
