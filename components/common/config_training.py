"""The training sections of the run config: the model (tfpipe's own or a team's module), the loop and its
strategy (train), the search (tune), the blessing gate (evaluate) and the launch (runtime)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from components.common import module_text
from components.common.config_data import Engine
from components.common.errors import ConfigError
from components.common.module_text import ModuleSource

ModelApi = Literal["sequential", "functional", "subclass"]
Strategy = Literal["auto", "default", "one_device", "mirrored", "multi_worker", "tpu"]
Schedule = Literal["constant", "step", "cosine", "exponential"]
Loop = Literal["fit", "custom"]


@dataclass(frozen=True)
class ModelConfig:
    """Which of the three Keras APIs builds the model, and its sizes; or the team's own `module`."""

    # A team's own model (components.common.model_module): a Python file (relative to the config file,
    # absolute, or gs://) or an importable module name, whose `function` builds the model. `api` and the
    # sizes below then do not apply; `params` are passed to it as they are.
    module: str = ""
    function: str = "build_model"
    params: dict[str, Any] = field(default_factory=dict)
    # filled in when the config is loaded (components.common.module_text): the module's text and hash
    source: ModuleSource = ModuleSource()
    api: ModelApi = "functional"
    # Convolutional (image) models: the chapter's digits CNN.
    filters: int = 32
    kernel_size: int = 5
    pool_size: int = 2
    dropout: float = 0.5
    # Tabular models: dense layers after the per-feature preprocessing.
    hidden_units: tuple[int, ...] = (64, 64)
    # Strings: embedding width; 0 one-hot encodes instead.
    embedding_dim: int = 8
    # Functional API: add a residual connection around each hidden block of equal width.
    residual: bool = False

    def resolved(self, config_file: str | Path | None = None) -> ModelConfig:
        """With `source` read from `module` (relative paths from the config file's folder); as it is when it
        already carries one (a step's input) or names no module."""
        if not self.module or self.source.sha256:
            return self
        module, source = module_text.read(self.module, config_file)
        return dataclasses.replace(self, module=module, source=source)


@dataclass(frozen=True)
class TensorBoardConfig:
    histogram_freq: int = 1
    write_graph: bool = True
    write_images: bool = True
    update_freq: str = "epoch"
    # [first, last] batch to profile; empty turns the profiler off.
    profile_batch: tuple[int, ...] = (2, 4)
    confusion_matrix: bool = True
    sample_images: int = 8


@dataclass(frozen=True)
class TrainConfig:
    """How to train: model, loop, schedule, callbacks, strategy."""

    model: ModelConfig = ModelConfig()
    # fit: model.fit with callbacks; custom: a tf.GradientTape loop (components.train.loop) driving the same callbacks.
    loop: Loop = "fit"
    # custom loop only: the gradient flowing back from the loss is clipped to this norm (0: off).
    clip_norm: float = 0.0
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_schedule: Schedule = "constant"
    # step schedule: the learning rate becomes lr_values[i] after epoch lr_boundaries[i].
    lr_boundaries: tuple[int, ...] = ()
    lr_values: tuple[float, ...] = ()
    lr_decay: float = 0.9
    early_stopping_patience: int = 0
    strategy: Strategy = "auto"
    tpu: str = ""
    mixed_precision: bool = False
    jit_compile: bool = False
    shuffle_buffer: int = 10000
    seed: int = 42
    tensorboard: TensorBoardConfig = TensorBoardConfig()
    # none: fresh weights; last_blessed: the weights of the model serving as production (else the newest blessed);
    # or the path of a .keras model. Layers are matched in order and must have the same kind and weight shapes.
    warm_start: str = "none"
    # when the warm-start model does not fit this one: error (naming the layer) or cold (train fresh, with a warning)
    warm_start_fallback: Literal["error", "cold"] = "error"

    def validate(self, where: str = "train") -> None:
        if self.warm_start not in ("none", "last_blessed") and not self.warm_start.endswith(".keras"):
            raise ConfigError(f"{where}.warm_start: expected none, last_blessed or the path of a .keras model, "
                              f"got {self.warm_start!r}")
        for name in ("epochs", "batch_size", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}.learning_rate: expected a number > 0, got {self.learning_rate}")
        if self.clip_norm < 0:
            raise ConfigError(f"{where}.clip_norm: expected a number >= 0 (0: no clipping), got {self.clip_norm}")
        if self.clip_norm and self.loop != "custom":
            raise ConfigError(f"{where}.clip_norm: applies to the custom loop; set {where}.loop=custom or remove it")
        if self.lr_schedule == "step" and len(self.lr_values) != len(self.lr_boundaries):
            raise ConfigError(f"{where}.lr_values: expected one value per boundary in {where}.lr_boundaries "
                              f"({len(self.lr_boundaries)}), got {len(self.lr_values)}")
        if list(self.lr_boundaries) != sorted(self.lr_boundaries):
            raise ConfigError(f"{where}.lr_boundaries: expected increasing epochs, got {list(self.lr_boundaries)}")
        if self.tensorboard.profile_batch and len(self.tensorboard.profile_batch) != 2:
            raise ConfigError(f"{where}.tensorboard.profile_batch: expected [first, last] or [], "
                              f"got {list(self.tensorboard.profile_batch)}")
        if self.model.module and not self.model.function.isidentifier():
            raise ConfigError(f"{where}.model.function: expected a function name, got {self.model.function!r}")
        self.model.source.validate(f"{where}.model.source")
        if not 0 <= self.model.dropout < 1:
            raise ConfigError(f"{where}.model.dropout: expected a fraction in [0, 1), got {self.model.dropout}")


@dataclass(frozen=True)
class Threshold:
    """What one metric must satisfy to bless a model.

    Value thresholds bound the metric itself. Change thresholds bound how much
    worse than the baseline (the last blessed model, evaluated on the same test
    split) it may be: `max_worse` in the metric's units, `max_worse_relative` as
    a fraction of the baseline's value. Lower is better for loss, mae, rmse,
    mse and ece; higher for every other metric.
    """

    at_least: float | None = None
    at_most: float | None = None
    max_worse: float | None = None
    max_worse_relative: float | None = None

    def validate(self, where: str) -> None:
        if all(v is None for v in (self.at_least, self.at_most, self.max_worse, self.max_worse_relative)):
            raise ConfigError(f"{where}: expected at least one of at_least, at_most (its value), max_worse, "
                              "max_worse_relative (against the baseline's)")
        for key in ("max_worse", "max_worse_relative"):
            if (getattr(self, key) or 0) < 0:
                raise ConfigError(f"{where}.{key}: expected a number >= 0")


@dataclass(frozen=True)
class EvaluateConfig:
    """Metrics on the test split, by slice, and the blessing gate."""

    # metric name (accuracy, loss, auc, macro_f1, recall/<class>, mae, rmse, r2, ...) -> its checks
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    # features to slice by; empty: every string feature, and every number in `numeric_bins` quantile bins
    slices: tuple[str, ...] = ()
    numeric_bins: int = 4
    batch_size: int = 256
    # local: metrics streamed over the test split in this process; beam: the same accumulators as a Beam CombineFn
    engine: Engine = "local"

    def validate(self, where: str = "evaluate") -> None:
        if self.numeric_bins < 1 or self.batch_size < 1:
            raise ConfigError(f"{where}.numeric_bins and {where}.batch_size: expected integers >= 1")
        for name, t in self.thresholds.items():
            t.validate(f"{where}.thresholds.{name}")


@dataclass(frozen=True)
class Domain:
    """The values one hyperparameter may take: a list (`values`), or an interval (`min`, `max`),
    of integers when `integer`, sampled on a log scale when `log`."""

    values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    integer: bool = False
    log: bool = False


@dataclass(frozen=True)
class TuneConfig:
    """Hyperparameter search over train config keys (`learning_rate`, `model.dropout`, ...)."""

    space: dict[str, Domain] = field(default_factory=dict)
    algorithm: Literal["grid", "random"] = "grid"
    trials: int = 8  # random: how many; grid: at most this many
    grid_points: int = 3  # points per interval in a grid
    seed: int = 0
    metric: str = "accuracy"  # of the eval split, as metrics.json names it
    goal: Literal["maximize", "minimize"] = "maximize"
    parallel: int = 1  # trials at once, each in its own process
    median_stopping: bool = False  # stop a trial whose best so far is worse than the median of finished trials
    median_stopping_min_epochs: int = 2

    def validate(self, where: str = "tune", searching: bool = False) -> None:
        """Every setting is checked whether or not the run tunes; `searching` also requires a space."""
        if searching and not self.space:
            raise ConfigError(f"{where}.space: expected at least one train key with its values or interval")
        for key, d in self.space.items():
            interval = d.min is not None and d.max is not None
            if bool(d.values) == interval:
                raise ConfigError(f"{where}.space.{key}: expected either values: [...] or min and max")
            if interval and (d.min > d.max or (d.log and d.min <= 0)):
                raise ConfigError(f"{where}.space.{key}: expected min <= max (and min > 0 on a log scale)")
            odd = [v for v in d.values if not isinstance(v, (str, int, float, bool))]
            if odd:
                raise ConfigError(f"{where}.space.{key}.values: expected numbers, strings or booleans (what "
                                  f"TensorBoard's HParams can show), got {odd[0]!r}; name the choices with a "
                                  f"string and let the module map them")
            _check_train_key(key, f"{where}.space.{key}")
        for name in ("trials", "grid_points", "parallel"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")


def _check_train_key(key: str, where: str) -> None:
    """A search-space key names a setting of the train section (`learning_rate`, `model.dropout`), or any
    key under `model.params` (the module reads those itself)."""
    node: Any = TrainConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            raise ConfigError(f"{where}: {part!r} is below a value, not a section; expected a key of the train "
                              f"section such as learning_rate, model.dropout or model.params.<name>")
        fields = typing.get_type_hints(node)
        if part not in fields:
            raise ConfigError(f"{where}: {part!r} is not a train setting; expected one of "
                              f"{', '.join(sorted(fields))} (keys are relative to the train section)")
        node = fields[part]
        if typing.get_origin(node) is dict:
            return


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the steps run."""

    # Training processes; more than one is a MultiWorkerMirroredStrategy run: local processes over 127.0.0.1,
    # or with launcher: tfjob a TFJob on the Kubeflow cluster the pipeline runs on (gs:// artifacts needed).
    workers: int = 1
    launcher: Literal["local", "tfjob"] = "local"
    namespace: str = "tfpipe"  # of the TFJob

    def validate(self, where: str = "runtime") -> None:
        if self.workers < 1:
            raise ConfigError(f"{where}.workers: expected an integer >= 1, got {self.workers}")
