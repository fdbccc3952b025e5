"""The one feature spec: written by ingest, read by every later step.

`schema.json` names each feature, its type and its statistics. Train parses
examples with `Schema.parse_spec()` and sets its preprocessing layers from the
statistics; export builds serving signatures from it; whatif edits features
within the ranges it records. Nobody re-declares features.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from components.common import io
from components.common.errors import TfpipeError

SCHEMA_VERSION = 1
# string: a category (a value from a vocabulary); text: free text kept whole, whose tokens the model looks up;
# <type>_list: any number of values of <type> in each row (tags, past purchases, readings), stored as a
# variable-length tf.Example feature and fed to the model ragged.
LIST_TYPES = ("int_list", "float_list", "string_list")
# What pads a row of a list in a served batch (a `[batch, longest]` tensor) out to the longest: a value no list
# holds (ingest rejects an int list holding -2**63, an empty string or a non-finite float), so the model can
# drop every one of them wherever they stand.
LIST_PADDING = {"int": -(2**63), "float": math.nan, "string": b""}
FEATURE_TYPES = ("int", "float", "string", "text", "image", *LIST_TYPES)


def with_lists(by_type: dict[str, Any], of=lambda value: value) -> dict[str, Any]:
    """`by_type` (a table keyed by feature type) with each list type added, as its values' type maps (through
    `of`): a list is stored, parsed and typed as its values are."""
    return {**by_type, **{t: of(by_type[t.removesuffix("_list")]) for t in LIST_TYPES}}


class SchemaError(TfpipeError):
    """schema.json is missing, malformed, or disagrees with the data."""


@dataclass(frozen=True)
class ImageShape:
    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    # int / float: count, missing, min, max, mean, std, histogram.
    # string: count, missing, unique, top: [[value, count], ...].
    # text: count, missing, tokens (in all), unique and top as strings have them but of tokens, and
    # length (UTF-8 bytes) and token_count (per value) as numbers have them.
    # <type>_list: count and missing count rows; values (in all) and the rest are of the values, as <type> has
    # them; length (values per row) as numbers have it.
    stats: dict[str, Any] = field(default_factory=dict)
    image: ImageShape | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "float")

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    @property
    def element_type(self) -> str:
        """The type of each value: int, float or string for a list, the feature's own type otherwise."""
        return self.type.removesuffix("_list")

    @property
    def default_value(self) -> Any:
        """What a missing value reads as, in every step that reads one: the training mean for numbers (rounded
        for integers; 0 without one), "" for strings, text and images.

        Ingest writes no value for a missing cell; the examples reader's parse spec fills it with this, and so
        does the SavedModel's own example parsing, built from the same spec; the model server fills a JSON
        `null`, or an input left out, with it too, so that a served request with a gap means what a training
        example with that cell empty meant.
        """
        mean = self.stats.get("mean")
        known = mean is not None and math.isfinite(mean)
        if self.type == "float":
            return float(mean) if known else 0.0
        if self.type == "int":
            return int(round(mean)) if known else 0
        return ""

    @property
    def vocabulary(self) -> list[str]:
        return [value for value, _ in self.stats.get("top", [])]


@dataclass(frozen=True)
class Schema:
    features: tuple[Feature, ...]
    label: str
    key: str = ""
    # Rows per split, as written.
    splits: dict[str, int] = field(default_factory=dict)
    # Where the data came from, resolved (a pattern becomes the files it matched).
    source: dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise SchemaError(f"schema: duplicate feature names in {names}")
        if self.label not in names:
            raise SchemaError(f"schema: label {self.label!r} is not one of the features {names}")
        if self.label_feature.is_list:
            raise SchemaError(f"schema: label {self.label!r} is a list ({self.label_feature.type}); a label is one "
                              f"class or value per row")
        for f in self.features:
            if f.type not in FEATURE_TYPES:
                raise SchemaError(f"schema: feature {f.name!r} has type {f.type!r}; expected one of {FEATURE_TYPES}")
            if f.type == "image" and f.image is None:
                raise SchemaError(f"schema: image feature {f.name!r} has no height/width/channels")

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise SchemaError(f"schema: no feature {name!r}; features are {[f.name for f in self.features]}")

    @property
    def label_feature(self) -> Feature:
        return self.feature(self.label)

    @property
    def inputs(self) -> tuple[Feature, ...]:
        """Every feature but the label: what a model takes."""
        return tuple(f for f in self.features if f.name != self.label)

    def serving_defaults(self) -> dict[str, Any]:
        """The inputs a request may leave out, with what they read as. Not images: "" decodes to no image."""
        return {f.name: f.default_value for f in self.inputs if f.type != "image"}

    def parse_spec(self) -> dict[str, Any]:
        """The `tf.io.parse_example` spec; a missing value reads as `Feature.default_value` says, and a list
        reads as a ragged row."""
        import tensorflow as tf

        dtypes = {"int": tf.int64, "float": tf.float32, "string": tf.string, "text": tf.string, "image": tf.string}
        return {
            f.name: tf.io.RaggedFeature(dtypes[f.element_type], row_splits_dtype=tf.int64) if f.is_list
            else tf.io.FixedLenFeature([], dtypes[f.type], default_value=f.default_value)
            for f in self.features
        }

    @property
    def has_lists(self) -> bool:
        return any(f.is_list for f in self.features)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, plain: dict[str, Any], where: str = "schema.json") -> Schema:
        try:
            version = plain.get("version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                raise SchemaError(f"{where}: schema version {version}; this tfpipe reads version {SCHEMA_VERSION}")
            features = tuple(
                Feature(
                    name=f["name"],
                    type=f["type"],
                    stats=f.get("stats", {}),
                    image=ImageShape(**f["image"]) if f.get("image") else None,
                )
                for f in plain["features"]
            )
            return cls(
                features=features,
                label=plain["label"],
                key=plain.get("key", ""),
                splits=plain.get("splits", {}),
                source=plain.get("source", {}),
                version=version,
            )
        except (KeyError, TypeError) as e:
            raise SchemaError(f"{where}: malformed schema, missing or bad field {e}") from None

    def write(self, folder: str) -> None:
        io.write_text(f"{folder}/schema.json", self.to_json() + "\n")

    @classmethod
    def read(cls, folder_or_file: str) -> Schema:
        path = folder_or_file if folder_or_file.endswith(".json") else f"{folder_or_file}/schema.json"
        if not io.exists(path):
            raise SchemaError(f"{path}: schema not found (run the ingest step first)")
        try:
            plain = io.read_json(path)
        except json.JSONDecodeError as e:
            raise SchemaError(f"{path}: not valid JSON: {e}") from None
        return cls.from_dict(plain, where=path)
