"""Loading a trained model, the one way every step does it: safe mode, uncompiled, checked against the schema."""

from __future__ import annotations

import keras

from components.common import io, layers, model_module  # noqa: F401 (importing layers registers the classes a model file names)
from components.common.errors import TfpipeError
from components.common.schema import Schema


class ModelError(TfpipeError):
    """A model file is missing, unreadable, or takes other features than the schema has."""


def model_file(model_dir: str) -> str:
    """The `model.keras` a train output folder holds, as a path a later step (or run) can reload it from."""
    return io.absolute(f"{model_dir.rstrip('/')}/model.keras")


def load_model(path: str, schema: Schema | None = None, what: str = "model") -> keras.Model:
    """A trained model, uncompiled and in Keras safe mode, from a `.keras` file or a train output folder;
    checked against the schema's features when one is given."""
    if not str(path).endswith(".keras"):
        path = f"{path}/model.keras"
    if not io.exists(path):
        raise ModelError(f"{path}: no {what} here; expected the train step's model.keras")
    model_module.import_beside(path)  # a team's model: its registered layers, losses and metrics
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    names = input_names(model)
    expected = sorted(f.name for f in schema.inputs) if schema is not None else None
    if expected is not None and names is not None and sorted(names) != expected:
        raise ModelError(f"{path}: the {what} takes features {sorted(names)}; the schema's inputs are {expected}")
    return model


def input_names(model: keras.Model) -> list[str] | None:
    """The feature names a model takes, where its structure says: a Sequential model's single input,
    a subclassed SchemaModel's features, or a functional model's dict of inputs."""
    if isinstance(model, keras.Sequential):
        return [model.inputs[0].name]
    if hasattr(model, "features"):
        return [f.name for f in model.features]
    try:
        structure = model.input
    except (AttributeError, ValueError):  # a model never called on symbolic inputs
        return None
    return list(structure) if isinstance(structure, dict) else None
