"""What the label asks for: classification over named classes, or regression.

The classes come from the schema (the label's vocabulary, sorted), so train,
evaluate, export and whatif agree on which output index means which class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.common.errors import ExamplesError
from components.common.schema import Schema

MAX_CLASSES = 1000


@dataclass(frozen=True)
class Task:
    kind: Literal["classification", "regression"]
    classes: tuple[str, ...] = ()

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.kind == "classification" else 1

    @property
    def loss(self) -> str:
        """The Keras loss on the model's output: softmax probabilities, or the predicted value."""
        return "sparse_categorical_crossentropy" if self.kind == "classification" else "mean_squared_error"


def task_of(schema: Schema) -> Task:
    label = schema.label_feature
    if label.type == "float":
        return Task("regression")
    if label.type == "image":
        raise ExamplesError(f"schema: label {label.name!r} is an image; expected a class or a number")
    stats = label.stats
    classes = label.vocabulary
    if label.type == "int" and not classes:
        low, high = stats.get("min"), stats.get("max")
        if low is None or high - low + 1 > MAX_CLASSES:
            return Task("regression")
        classes = [str(v) for v in range(int(low), int(high) + 1)]
    if stats.get("unique", len(classes)) > len(classes):
        raise ExamplesError(f"schema: label {label.name!r} has {stats['unique']} classes but the schema lists only "
                         f"{len(classes)}; raise ingest.vocab_top_n and ingest again")
    if len(classes) < 2:
        raise ExamplesError(f"schema: label {label.name!r} has {len(classes)} class(es); a classifier needs at least 2")
    key = int if label.type == "int" else str
    return Task("classification", tuple(sorted(classes, key=key)))
