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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from components.common.config_data import (  # noqa: F401 (the sections, importable from here as before)
    AnomalyKind,
    BeamConfig,
    BigQueryOptions,
    CsvOptions,
    DriftThresholds,
    Engine,
    FeatureType,
    ImageOptions,
    IngestConfig,
    SourceFormat,
    SplitRatios,
    ValidateConfig,
)
from components.common.config_serving import (  # noqa: F401 (the sections, importable from here as before)
    CLASSIFICATION_QUALITY,
    EXAMPLE_KEY_HEADER,
    REGRESSION_QUALITY,
    BatchingConfig,
    DeployConfig,
    DeployTarget,
    ExportConfig,
    KServeLoggerMode,
    LabelsConfig,
    MonitorConfig,
    PredictConfig,
    RequestLogConfig,
    RetrainOn,
    ServeConfig,
    VersionPolicy,
    WhatIfConfig,
)
from components.common.config_training import (  # noqa: F401 (the sections, importable from here as before)
    Domain,
    EvaluateConfig,
    Loop,
    ModelApi,
    ModelConfig,
    RuntimeConfig,
    Schedule,
    Strategy,
    TensorBoardConfig,
    Threshold,
    TrainConfig,
    TuneConfig,
)
from components.common.errors import ConfigError, TfpipeError  # noqa: F401 (ConfigError: this module's API)


@dataclass(frozen=True)
class PipelineConfig:
    """How the KFP pipeline is built: image, caching, retries, resources."""

    # The component image (containers/components/Dockerfile); locally the project's venv stands in for it.
    base_image: str = "tfpipe-components:latest"
    cache: bool = True
    retries: int = 1  # for steps that can fail for passing reasons (reading remote data, deploying)
    cpu: str = "2"
    memory: str = "8G"
    accelerator_type: str = ""  # e.g. NVIDIA_TESLA_T4 on Vertex, nvidia.com/gpu on Kubeflow
    accelerator_count: int = 0
    # Vertex: train runs as a CustomJob of runtime.workers replicas of this machine type (TF_CONFIG set by Vertex)
    machine_type: str = "n1-standard-4"
    vertex_tensorboard: str = ""  # projects/P/locations/R/tensorboards/ID: training logs stream there
    vertex_output_directory: str = ""  # gs:// folder for the CustomJob's outputs (needed with a TensorBoard)

    def validate(self, where: str = "pipeline") -> None:
        if self.retries < 0 or self.accelerator_count < 0:
            raise ConfigError(f"{where}.retries and {where}.accelerator_count: expected integers >= 0")
        if self.vertex_tensorboard and not self.vertex_output_directory.startswith("gs://"):
            raise ConfigError(f"{where}.vertex_output_directory: a Vertex TensorBoard needs a gs:// output folder")


@dataclass(frozen=True)
class RunConfig:
    """The whole run: a name, where runs go, and one section per step."""

    name: str = "tfpipe"
    runs_root: str = "runs"
    ingest: IngestConfig = IngestConfig()
    validation: ValidateConfig = ValidateConfig()  # named so as not to hide validate()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    deploy: DeployConfig = DeployConfig()
    tune: TuneConfig = TuneConfig()
    whatif: WhatIfConfig = WhatIfConfig()
    monitor: MonitorConfig = MonitorConfig()
    predict: PredictConfig = PredictConfig()
    beam: BeamConfig = BeamConfig()
    pipeline: PipelineConfig = PipelineConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @property
    def serving_base(self) -> str:
        return self.export.base or f"{self.runs_root}/serving"

    @property
    def model_home(self) -> str:
        """`<serving base>/<model name>`: the version folders and the blessing record (`blessed.json`)."""
        return f"{self.serving_base}/{self.export.model_name}"

    def validate(self) -> RunConfig:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"name: expected letters, digits, '-' or '_', got {self.name!r}")
        self.ingest.validate()
        self.validation.validate()
        self.train.validate()
        self.evaluate.validate()
        self.export.validate()
        self.serve.validate()
        self.deploy.validate()
        self.whatif.validate()
        self.monitor.validate()
        self.predict.validate()
        self.beam.validate()
        self.pipeline.validate()
        self.runtime.validate()
        self.tune.validate()
        return self

    def with_absolute_paths(self) -> RunConfig:
        """The config with its local paths (runs root, source, export and deploy bases, labels) made absolute: the same
        folders from any working folder, and inside containers that mount them at their own paths."""
        from components.common.io import absolute

        labels = dataclasses.replace(self.monitor.labels, source=absolute(self.monitor.labels.source))
        return dataclasses.replace(self, runs_root=absolute(self.runs_root),
                                   ingest=dataclasses.replace(self.ingest, source=absolute(self.ingest.source)),
                                   export=dataclasses.replace(self.export, base=absolute(self.export.base)),
                                   deploy=dataclasses.replace(self.deploy, local_base=absolute(self.deploy.local_base)),
                                   monitor=dataclasses.replace(self.monitor, labels=labels))

    def to_json(self, indent: int | None = 2) -> str:
        """JSON of the whole config; `indent=None` gives one line (KFP comments parameter defaults line by line)."""
        return json.dumps(to_plain(self), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return from_plain(cls, json.loads(text)).validate()

    def sections_json(self, *names: str) -> str:
        """Only the named sections, as one line of JSON: a step's input that changes only with its settings."""
        return json.dumps({name: to_plain(getattr(self, name)) for name in names}, sort_keys=True)

    @classmethod
    def from_sections_json(cls, text: str, section: str) -> RunConfig:
        """A config from `sections_json`, other sections at their defaults, `section` validated."""
        cfg = from_plain(cls, json.loads(text))
        getattr(cfg, section).validate(section)
        return cfg

    def write(self, folder: str | Path) -> Path:
        from components.common import io

        return io.write_text(f"{folder}/config.json", self.to_json() + "\n")


def load(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Reads a YAML config (or the defaults), applies `a.b=value` overrides, validates."""
    plain: dict[str, Any] = yaml_mapping(path) if path is not None else {}
    for item in overrides:
        apply_override(plain, item)
    return _with_module(from_plain(RunConfig, plain), path).validate()


def load_section(path: str | Path | None, overrides: typing.Sequence[str], section: str) -> RunConfig:
    """Like `load`, for a command that runs one step: only that section must be complete.

    `tfpipe train --examples DIR` needs no ingest source, so the other sections
    are checked for unknown keys and types but not for required values.
    """
    plain: dict[str, Any] = yaml_mapping(path) if path is not None else {}
    for item in overrides:
        apply_override(plain, item)
    cfg = _with_module(from_plain(RunConfig, plain), path)
    getattr(cfg, section).validate(section)
    return cfg


def _with_module(cfg: RunConfig, path: str | Path | None) -> RunConfig:
    """The config with the team's model module read in, so that its code travels with the config."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, model=cfg.train.model.resolved(path)))


def yaml_mapping(path: str | Path) -> dict[str, Any]:
    try:
        plain = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(plain, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return plain


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
