"""Warm start: a new model begins from the weights of an earlier one, when the two are the same architecture.

Layers are matched in order, not by name: Keras names layers it creates
itself from process-wide counters, so the same Sequential model built twice
can carry other names. Each pair must be the same kind of layer with the same
weight shapes; the first that is not is named in the error. Preprocessing is
not copied: a layer like `Standardize` keeps the new data's statistics, which
are configuration, not weights; a vocabulary that changed changes the shape of
its embedding, which the check reports. A text feature's vocabulary, adapted on
each run's train split, must be the earlier one token for token: it holds no
weights, so a changed one would otherwise go unseen while its embedding's rows
were read for other tokens.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import keras

from components.common.model_loading import load_model
from components.common.schema import Schema
from components.train.errors import TrainError

log = logging.getLogger("tfpipe.train")


@dataclass(frozen=True)
class WarmStart:
    """Where a run started from, as `training.json` records it."""

    source: str  # the .keras model whose weights were loaded; "" for fresh weights
    layers: int = 0  # layers whose weights were copied
    note: str = ""  # why a requested warm start did not happen

    def to_json(self) -> dict:
        return asdict(self)


def apply(model: keras.Model, source: str, schema: Schema, fallback: str) -> WarmStart:
    """Copies `source`'s weights into `model`; with `fallback == "cold"` a mismatch leaves `model` fresh."""
    if source == "none":
        return WarmStart("")
    try:
        earlier = load_model(source, schema, what="warm-start model")
        copied = _copy(earlier, model, source)
    except TrainError as e:
        if fallback != "cold":
            raise
        log.warning("train: %s; training from fresh weights (train.warm_start_fallback=cold)", e)
        return WarmStart("", note=str(e))
    log.info("train: warm start from %s (%d layers)", source, copied)
    return WarmStart(source, copied)


def _copy(source: keras.Model, target: keras.Model, where: str) -> int:
    """Checks every pair of layers before copying any, so a mismatch leaves `target` untouched."""
    if len(source.layers) != len(target.layers):
        raise TrainError(f"{where}: the warm-start model has {len(source.layers)} layers, this model "
                         f"{len(target.layers)}; train.warm_start needs the same architecture")
    for s, t in zip(source.layers, target.layers, strict=True):
        if isinstance(t, keras.layers.TextVectorization) and (
                type(s) is not type(t) or s.get_vocabulary() != t.get_vocabulary()):
            raise TrainError(f"{where}: text layer {t.name!r} was adapted on this train split to a vocabulary "
                             f"that is not the warm-start model's layer {s.name!r}'s; the embeddings after it "
                             f"would be read for other tokens, so train.warm_start cannot reuse them")
    pairs = [(s, t) for s, t in zip(source.layers, target.layers, strict=True) if s.weights or t.weights]
    for s, t in pairs:
        shapes = [tuple(w.shape) for w in s.weights], [tuple(w.shape) for w in t.weights]
        if type(s) is not type(t) or shapes[0] != shapes[1]:
            raise TrainError(f"{where}: layer {t.name!r} is {type(t).__name__} with weights {shapes[1]}; the "
                             f"warm-start model's layer {s.name!r} is {type(s).__name__} with weights {shapes[0]}")
    for s, t in pairs:
        t.set_weights(s.get_weights())
    return len(pairs)
