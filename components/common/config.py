"""One typed run configuration for every step.

`RunConfig` is a tree of frozen dataclasses. It is loaded from YAML, overridden
with `section.key=value` strings, validated once, and written next to every
run's outputs. Unknown keys and values of the wrong type are errors that name
the key and the type expected, because a silently ignored typo in a training
config costs hours.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from components.common.errors import TfpipeError


class ConfigError(TfpipeError):
    """A config value is unknown, missing or of the wrong type."""


@dataclass(frozen=True)
class SplitRatios:
    """Fractions of rows for each split; a stable hash assigns rows (see components.ingest.split)."""

    train: float = 0.8
    eval: float = 0.1
    test: float = 0.1

    def validate(self, where: str) -> None:
        for name in ("train", "eval", "test"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: expected a fraction >= 0, got {getattr(self, name)}")
        total = self.train + self.eval + self.test
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"{where}: train + eval + test must be 1.0, got {total:g}")


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quote_char: str = '"'
    header: bool = True
    # Used only when `header` is false.
    column_names: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
    encoding: str = "utf8"


@dataclass(frozen=True)
class ImageOptions:
    # [height, width] to resize every image to; empty keeps the first image's size
    # and rejects images of any other size.
    size: tuple[int, ...] = ()
    grayscale: bool = False
    extensions: tuple[str, ...] = (".png", ".jpg", ".jpeg")


FeatureType = Literal["int", "float", "string", "image"]
SourceFormat = Literal["auto", "csv", "parquet", "jsonl", "images"]


@dataclass(frozen=True)
class IngestConfig:
    """What to read and how to turn it into TFRecords + schema."""

    source: str = ""
    format: SourceFormat = "auto"
    label: str = "label"
    # Column whose value decides the split; empty hashes the whole row.
    key: str = ""
    drop: tuple[str, ...] = ()
    types: dict[str, FeatureType] = field(default_factory=dict)
    split: SplitRatios = SplitRatios()
    shards: int = 2
    batch_rows: int = 65536
    infer_rows: int = 10000
    vocab_top_n: int = 100
    max_rejected_fraction: float = 0.01
    threads: int = 2
    csv: CsvOptions = CsvOptions()
    image: ImageOptions = ImageOptions()

    def validate(self, where: str = "ingest") -> None:
        if not self.source:
            raise ConfigError(f"{where}.source: expected a path or gs:// URI of the data, got nothing")
        if not self.label:
            raise ConfigError(f"{where}.label: expected the name of the label column")
        for name in ("shards", "batch_rows", "infer_rows", "vocab_top_n", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.max_rejected_fraction <= 1.0:
            raise ConfigError(f"{where}.max_rejected_fraction: expected a fraction in [0, 1], got {self.max_rejected_fraction}")
        if self.image.size and len(self.image.size) != 2:
            raise ConfigError(f"{where}.image.size: expected [height, width], got {list(self.image.size)}")
        if len(self.csv.delimiter) != 1:
            raise ConfigError(f"{where}.csv.delimiter: expected one character, got {self.csv.delimiter!r}")
        self.split.validate(f"{where}.split")


@dataclass(frozen=True)
class RunConfig:
    """The whole run: a name, where runs go, and one section per step."""

    name: str = "tfpipe"
    runs_root: str = "runs"
    ingest: IngestConfig = IngestConfig()

    def validate(self) -> RunConfig:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"name: expected letters, digits, '-' or '_', got {self.name!r}")
        self.ingest.validate()
        return self

    def to_json(self) -> str:
        return json.dumps(to_plain(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return from_plain(cls, json.loads(text)).validate()

    def write(self, folder: str | Path) -> Path:
        from components.common import io

        return io.write_text(f"{folder}/config.json", self.to_json() + "\n")


def load(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Reads a YAML config (or the defaults), applies `a.b=value` overrides, validates."""
    plain: dict[str, Any] = {}
    if path is not None:
        try:
            plain = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(plain, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for item in overrides:
        apply_override(plain, item)
    return from_plain(RunConfig, plain).validate()


def apply_override(plain: dict[str, Any], item: str) -> None:
    """Sets `a.b.c=value` in a nested dict; the value is read as YAML (`3`, `0.5`, `[a, b]`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    node = plain
    *parents, leaf = key.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
    try:
        node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        node[leaf] = raw


def to_plain(value: Any) -> Any:
    """Dataclasses to JSON-able dicts, tuples to lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_plain(cls: type, plain: Any, where: str = "") -> Any:
    """Builds dataclass `cls` from dicts, checking every key and coercing every value."""
    if not isinstance(plain, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {plain!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(plain) - names)
    if unknown:
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key; expected one of {', '.join(sorted(names))}")
    kwargs = {k: coerce(hints[k], v, _join(where, k)) for k, v in plain.items()}
    return cls(**kwargs)


def coerce(hint: Any, value: Any, where: str) -> Any:
    """Converts a YAML/JSON value to the type `hint`, or raises ConfigError naming `where`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_plain(hint, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_t, val_t = args
        return {coerce(key_t, k, where): coerce(val_t, v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    raise TypeError(f"{where}: no coercion for type {hint!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
