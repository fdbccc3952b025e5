"""A check several tests make: an exported model, served over REST and gRPC, answers as the Keras model does."""

from __future__ import annotations

import numpy as np


def assert_served_as_keras(model_base: str, name: str, examples: str, model_dir: str, rows: int = 8) -> list[dict]:
    """The first `rows` test examples, as REST instances and as gRPC tensors (lists padded), answer the Keras
    model's probabilities to 1e-5; returns the instances sent."""
    from components.common import reader
    from components.common.config import ServeConfig
    from components.common.model_loading import load_model
    from components.common.schema import LIST_PADDING, Schema
    from components.common.task import task_of
    from components.evaluate.step import column
    from components.serve.client import GrpcClient, RestClient
    from components.serve.server import running
    from components.serve.tensors import padded

    schema = Schema.read(examples)
    features, _ = next(iter(reader.dataset(examples, "test", schema, task_of(schema), rows, training=False)))
    expected = load_model(model_dir, schema).predict(features, verbose=0)
    columns = {k: column(v) for k, v in features.items()}
    instances = [{k: _json(v[i]) for k, v in columns.items()} for i in range(len(expected))]
    tensors = {k: v.astype(object) if v.dtype.kind in "SO" else v for k, v in columns.items()}
    for f in schema.inputs:
        if f.is_list:
            rows_of = columns[f.name]
            dtype = {"string": object, "float": np.float32, "int": np.int64}[f.element_type]
            values = np.concatenate([np.asarray(r, dtype=dtype) for r in rows_of])
            tensors[f.name] = padded(values, np.array([len(r) for r in rows_of]), LIST_PADDING[f.element_type])
    with running(ServeConfig(model_base=model_base, rest_port=0, grpc_port=0)) as server:
        rest = RestClient(server.rest_url, name)
        grpc_client = GrpcClient(server.grpc_target, name)
        try:
            by_rest = rest.predict(instances=instances)
            by_grpc = grpc_client.predict(tensors)
        finally:
            rest.close()
            grpc_client.close()
    np.testing.assert_allclose([p["probabilities"] for p in by_rest["predictions"]], expected, atol=1e-5)
    np.testing.assert_allclose(by_grpc["probabilities"], expected, atol=1e-5)
    return instances


def _json(value):
    """One feature value as a REST instance carries it: text for bytes, a list for a list's values."""
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value]
    return value.decode() if isinstance(value, bytes) else value.item()
