"""The model a batch is scored with: a registry version's SavedModel, through its `predict_examples` signature.

The SavedModel rather than the Keras model the registry records, because:
it is what the model server serves, graph for graph, so batch and online
predictions are the same numbers (the preprocessing and the missing-value
defaults of its parse spec are inside it); every registered version has one
(a version registered without its `.keras` file has nothing else), and it
loads without the team's model module. Rows reach it as serialized
`tf.train.Example`s: an examples folder's records as they are, a source's
rows encoded by ingest's own encoder (components.ingest.examples), so a
missing cell reads as it read in training.

A `Scorer` is made once per process, or once per Beam worker (`DoFn.setup`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from components.common import io
from components.common.errors import TfpipeError
from components.common.registry import Registry
from components.common.schema import Schema
from components.common.signatures import OutputName as O, SignatureName as S
from components.common.task import Task

PREDICTED_CLASS = "predicted_class"
PROBABILITIES = "probabilities"
PREDICTED_VALUE = "predicted_value"


class ModelChoiceError(TfpipeError):
    """The version or alias asked for is not in the model's folder."""


@dataclass(frozen=True)
class Version:
    """One version of a model: `<home>/<version>/`, a SavedModel with its schema in `assets.extra/`."""

    home: str
    version: int
    alias: str = ""  # the alias it was found by; "" when asked for by number

    @property
    def path(self) -> str:
        return f"{self.home}/{self.version}"

    def schema(self) -> Schema:
        """The schema the version was trained on: what a source is typed with and what its inputs are."""
        return Schema.read(f"{self.path}/assets.extra")

    def describe(self) -> str:
        return f"{self.home} version {self.version}" + (f" ({self.alias})" if self.alias else "")


def resolve(home: str, version: int | None = None, alias: str = "") -> Version:
    """The version asked for by number or by alias (the registry's `production`, ...), checked to be on disk."""
    if (version is None) == (not alias):
        raise ModelChoiceError("expected one of --version N or --label ALIAS")
    home = io.absolute(str(home).rstrip("/"))
    registry = Registry(home)
    registry.check_home()
    found = Version(home, registry.resolve(alias), alias) if alias else Version(home, version)
    if not io.exists(f"{found.path}/saved_model.pb"):
        raise ModelChoiceError(f"{found.path}/saved_model.pb: not there; {found.describe()} has no SavedModel")
    return found


class Scorer:
    """The version's `predict_examples` signature, loaded once: serialized examples in, predictions as Arrow out.

    Made before it loads (`load`), so that the thread that scores (components.predict.units) loads it while
    the first batches are read."""

    def __init__(self, version: Version, task: Task):
        self._version, self._task = version, task
        self._loaded = None  # the loaded SavedModel, kept: its signature needs its variables alive

    def load(self) -> None:
        if self._loaded is None:
            import tensorflow as tf

            self._loaded = tf.saved_model.load(self._version.path)

    def outputs(self, serialized) -> dict:
        """The signature's outputs (tensors) for serialized examples: a tf.string tensor, or a numpy array of
        bytes. Apart from `table`, so that one batch is scored while the one before is written."""
        import tensorflow as tf

        self.load()
        return self._loaded.signatures[S.PREDICT_EXAMPLES](inputs=tf.convert_to_tensor(serialized, tf.string))

    def table(self, outputs: dict) -> pa.Table:
        """The signature's outputs as the prediction columns (`output_schema`)."""
        if self._task.kind == "regression":
            return pa.table({PREDICTED_VALUE: pa.array(outputs[O.PREDICTIONS].numpy(), pa.float32())})
        probabilities = outputs[O.PROBABILITIES].numpy().astype(np.float32, copy=False)
        classes = pa.array(self._task.classes, pa.string()).take(outputs[O.CLASS_IDS].numpy())
        offsets = np.arange(0, probabilities.size + 1, probabilities.shape[1], dtype=np.int32)
        return pa.table({PREDICTED_CLASS: classes,
                         PROBABILITIES: pa.ListArray.from_arrays(offsets, pa.array(probabilities.reshape(-1)))})


def output_schema(task: Task) -> pa.Schema:
    """The prediction columns: the class and each class's probability (in `task.classes` order), or the value."""
    if task.kind == "regression":
        return pa.schema([(PREDICTED_VALUE, pa.float32())])
    return pa.schema([(PREDICTED_CLASS, pa.string()), (PROBABILITIES, pa.list_(pa.float32()))])
