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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from components.common import module_text
from components.common.errors import TfpipeError
from components.common.module_text import ModuleSource


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


@dataclass(frozen=True)
class BigQueryOptions:
    """How a `bq://project.dataset.table` source (or `ingest.query`) is read: the BigQuery Storage Read API."""

    project: str = ""  # the project billed for the read (and that runs `ingest.query`); empty: the table's
    row_restriction: str = ""  # a SQL filter the Storage Read API applies, e.g. "day >= '2026-11-01'"
    snapshot_time: str = ""  # RFC 3339: read the table as it was then; empty: as of the read session
    timestamps: Literal["string", "seconds"] = "string"  # DATE/DATETIME/TIMESTAMP as ISO text or int64 seconds
    endpoint: str = ""  # host:port of the Storage Read API; empty: Google's


FeatureType = Literal["int", "float", "string", "text", "image"]
SourceFormat = Literal["auto", "csv", "parquet", "jsonl", "images"]
Engine = Literal["local", "beam"]


@dataclass(frozen=True)
class IngestConfig:
    """What to read and how to turn it into TFRecords + schema."""

    # A file, folder or glob, local or gs://; {YYYY}-{MM}-{DD} or {SPAN} pick the newest present at run time.
    # bq://project.dataset.table reads a BigQuery table ({YYYY}{MM}{DD} picks a partition by day).
    source: str = ""
    query: str = ""  # BigQuery SQL to read instead of a source ({YYYY}-{MM}-{DD} as in a source)
    # local: this process (Arrow, threads); beam: an Apache Beam pipeline (section `beam`: runner and options)
    engine: Engine = "local"
    source_date: str = ""  # YYYY-MM-DD: the day a {YYYY}-{MM}-{DD} source takes, instead of the newest
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
    # A text value longer than this (UTF-8 bytes) rejects its row: one stray document must not bloat every batch.
    max_text_bytes: int = 65536
    max_rejected_fraction: float = 0.01
    threads: int = 2
    csv: CsvOptions = CsvOptions()
    image: ImageOptions = ImageOptions()
    bigquery: BigQueryOptions = BigQueryOptions()

    def validate(self, where: str = "ingest") -> None:
        if not self.source and not self.query:
            raise ConfigError(f"{where}.source: expected a path or gs:// URI of the data, a bq:// table, or "
                              f"{where}.query, got nothing")
        if not self.label:
            raise ConfigError(f"{where}.label: expected the name of the label column")
        for name in ("shards", "batch_rows", "infer_rows", "vocab_top_n", "max_text_bytes", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.max_rejected_fraction <= 1.0:
            raise ConfigError(f"{where}.max_rejected_fraction: expected a fraction in [0, 1], "
                              f"got {self.max_rejected_fraction}")
        if self.image.size and len(self.image.size) != 2:
            raise ConfigError(f"{where}.image.size: expected [height, width], got {list(self.image.size)}")
        if len(self.csv.delimiter) != 1:
            raise ConfigError(f"{where}.csv.delimiter: expected one character, got {self.csv.delimiter!r}")
        self.split.validate(f"{where}.split")


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
            if all(v is None for v in (t.at_least, t.at_most, t.max_worse, t.max_worse_relative)):
                raise ConfigError(f"{where}.thresholds.{name}: expected at least one of at_least, at_most, "
                                  "max_worse, max_worse_relative")
            for key in ("max_worse", "max_worse_relative"):
                if (getattr(t, key) or 0) < 0:
                    raise ConfigError(f"{where}.thresholds.{name}.{key}: expected a number >= 0")


@dataclass(frozen=True)
class ExportConfig:
    """Where SavedModels go, in TF Serving's `<base>/<model_name>/<version>/` layout."""

    # empty: <runs_root>/serving, shared by every run so that versions and the blessing record accumulate
    base: str = ""
    model_name: str = "model"
    warmup_examples: int = 5

    def validate(self, where: str = "export") -> None:
        if not self.model_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}.model_name: expected letters, digits, '-' or '_', got {self.model_name!r}")
        if self.warmup_examples < 0:
            raise ConfigError(f"{where}.warmup_examples: expected an integer >= 0")


@dataclass(frozen=True)
class BatchingConfig:
    """TF Serving's batching options."""

    enabled: bool = False
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2


VersionPolicy = Literal["latest", "all", "specific"]
KServeLoggerMode = Literal["all", "request", "response"]


@dataclass(frozen=True)
class RequestLogConfig:
    """A sample of the requests served and their answers, as TF Serving's PredictionLogs: `tfpipe serve` writes
    them to rotated TFRecord files (components.serve.request_log), which the monitor step reads; in clusters
    KServe's logger or Vertex's request-response logging to BigQuery keeps them."""

    sampling_rate: float = 0.0  # the fraction of requests logged; 0 logs none
    dir: str = ""  # tfpipe serve: the folder of log files (needed when sampling_rate > 0)
    max_file_bytes: int = 64 << 20  # a file is closed once it holds this much
    max_files: int = 16  # files kept, the open one included; the oldest goes first
    kserve_url: str = ""  # kserve: where KServe's logger posts its CloudEvents; empty: KServe's default sink
    kserve_mode: KServeLoggerMode = "all"
    bigquery_destination: str = ""  # vertex: bq://project.dataset[.table]; empty: Vertex creates a dataset

    def validate(self, where: str = "serve.logging") -> None:
        if not 0.0 <= self.sampling_rate <= 1.0:
            raise ConfigError(f"{where}.sampling_rate: expected a fraction in [0, 1], got {self.sampling_rate}")
        if self.max_file_bytes < 1024 or self.max_files < 2:
            raise ConfigError(f"{where}: max_file_bytes >= 1024 and max_files >= 2 expected (one file is open "
                              f"while the others wait to be read), got {self.max_file_bytes} and {self.max_files}")
        if self.bigquery_destination and not self.bigquery_destination.startswith("bq://"):
            raise ConfigError(f"{where}.bigquery_destination: expected bq://project.dataset[.table], got "
                              f"{self.bigquery_destination!r}")


@dataclass(frozen=True)
class ServeConfig:
    """The local TF-Serving-compatible server (`tfpipe serve`)."""

    # <base>/<name>: the folder of numbered versions; empty: the export's model home
    model_base: str = ""
    model_name: str = ""  # empty: the folder's name
    host: str = "127.0.0.1"
    rest_port: int = 8501  # 0 picks a free port
    grpc_port: int = 8500
    version_policy: VersionPolicy = "latest"
    versions: tuple[int, ...] = ()  # for version_policy: specific
    labels_file: str = ""  # YAML/JSON {label: version}, re-read on every poll
    poll_seconds: float = 1.0
    batching: BatchingConfig = BatchingConfig()
    max_request_bytes: int = 16 << 20
    request_timeout_seconds: float = 30.0
    # accept NaN, Infinity and floats past float32 in requests, and answer NaN / Infinity (TF Serving's JSON)
    allow_non_finite: bool = False
    logging: RequestLogConfig = RequestLogConfig()
    # after the pipeline's infra check a deployed version becomes the registry's `candidate`; auto: `production` too
    promote: Literal["manual", "auto"] = "manual"
    # On SIGTERM or SIGINT readiness answers 503 at once and requests are still answered for shutdown_delay_seconds
    # (load balancers take a moment to stop sending); then no new connection or RPC is taken, those in flight
    # finish, and the process exits 0 within shutdown_grace_seconds (below Kubernetes' default 30 s). Requests still
    # running SHUTDOWN_RESERVE_SECONDS before the grace ends are answered 503 / UNAVAILABLE.
    shutdown_delay_seconds: float = 5.0
    shutdown_grace_seconds: float = 25.0
    SHUTDOWN_RESERVE_SECONDS = 2.0  # not a setting: the end of the grace kept for those answers and the request log
    # Clients are bounded: a request's headers must arrive within header_timeout_seconds of its first byte and its
    # body within body_timeout_seconds (else 408); a connection idle this long is closed.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 60.0
    # open connections per front end (REST, gRPC); more are refused at once (503). 0: as many as the descriptor
    # limit allows, keeping some for model files and logs
    max_connections: int = 0

    def validate(self, where: str = "serve") -> None:
        self.logging.validate(f"{where}.logging")
        if self.version_policy == "specific" and not self.versions:
            raise ConfigError(f"{where}.versions: version_policy specific needs a list of versions")
        b = self.batching
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(b, name) < 1:
                raise ConfigError(f"{where}.batching.{name}: expected an integer >= 1, got {getattr(b, name)}")
        if self.max_request_bytes < 1024 or self.request_timeout_seconds <= 0 or self.poll_seconds <= 0:
            raise ConfigError(f"{where}: max_request_bytes >= 1024, request_timeout_seconds > 0 and "
                              "poll_seconds > 0 expected")
        for name in ("header_timeout_seconds", "body_timeout_seconds", "idle_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: expected a number of seconds > 0, got {getattr(self, name)}")
        if self.max_connections < 0:
            raise ConfigError(f"{where}.max_connections: expected 0 (from the descriptor limit) or more, got "
                              f"{self.max_connections}")
        if self.shutdown_delay_seconds < 0 or \
                self.shutdown_grace_seconds < self.shutdown_delay_seconds + self.SHUTDOWN_RESERVE_SECONDS:
            raise ConfigError(f"{where}.shutdown_grace_seconds: expected at least shutdown_delay_seconds + "
                              f"{self.SHUTDOWN_RESERVE_SECONDS:g} (the last seconds answer what still runs and write "
                              f"the request log), with shutdown_delay_seconds >= 0; got "
                              f"{self.shutdown_grace_seconds:g} and {self.shutdown_delay_seconds:g}")


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


AnomalyKind = Literal["missing_feature", "new_feature", "type_change", "out_of_domain", "out_of_range",
                      "missing_fraction", "new_label_class", "empty_split", "drift"]


@dataclass(frozen=True)
class DriftThresholds:
    """The largest distance from the baseline a feature may drift: L-infinity for categorical features,
    Jensen-Shannon divergence for numeric ones (components.validate.distance); both lie in [0, 1]."""

    default: float = 0.1
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidateConfig:
    """The data gate before training: new examples' statistics against the last good run's (components.validate)."""

    drift: DriftThresholds = DriftThresholds()
    range_tolerance: float = 0.25  # how far beyond the baseline's [min, max] numbers may reach, in its widths
    missing_tolerance: float = 0.05  # how much more of a feature may be missing than in the baseline
    domain_tolerance: float = 0.0  # the fraction of rows that may hold a category the baseline never saw
    # kinds that fail the gate; every other kind only warns
    fail: tuple[AnomalyKind, ...] = ("missing_feature", "type_change", "missing_fraction", "new_label_class",
                                     "empty_split", "drift")

    def validate(self, where: str = "validation") -> None:
        for name, value in [("drift.default", self.drift.default),
                            *((f"drift.features.{k}", v) for k, v in self.drift.features.items())]:
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{where}.{name}: expected a distance in [0, 1], got {value}")
        for name in ("range_tolerance", "missing_tolerance", "domain_tolerance"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: expected a number >= 0, got {getattr(self, name)}")


RetrainOn = Literal["skew", "drift", "never"]


@dataclass(frozen=True)
class MonitorConfig:
    """Skew and drift of served traffic (components.monitor): each window of logged requests against the
    training statistics (skew) and against the window before it (drift). The label's name in `features` sets
    the threshold of the model's predictions."""

    skew: DriftThresholds = DriftThresholds()
    drift: DriftThresholds = DriftThresholds()
    window_seconds: int = 3600  # windows start at multiples of this since the epoch (UTC)
    retrain_on: RetrainOn = "never"  # which crossed threshold starts a training run
    # the monitoring pipeline reads the last this many complete windows (the one under way waits for the next run)
    lookback_windows: int = 2
    # deploy.target vertex: a Vertex Model Monitoring job watches the endpoint with these thresholds, every
    # window_seconds (Vertex's least is an hour), on the requests serve.logging.sampling_rate samples
    vertex_job: bool = False
    alert_emails: tuple[str, ...] = ()  # Vertex Model Monitoring mails them when a threshold is crossed
    MAX_WINDOW_SECONDS = 100 * 365 * 86400  # not a setting: a window's ends are dates (Python's reach year 9999)

    def validate(self, where: str = "monitor") -> None:
        for side in ("skew", "drift"):
            thresholds = getattr(self, side)
            for name, value in [("default", thresholds.default), *thresholds.features.items()]:
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"{where}.{side}.{'' if name == 'default' else 'features.'}{name}: "
                                      f"expected a distance in [0, 1], got {value}")
        if not 1 <= self.window_seconds <= self.MAX_WINDOW_SECONDS:
            raise ConfigError(f"{where}.window_seconds: expected 1 to {self.MAX_WINDOW_SECONDS:,} seconds (100 "
                              f"years), got {self.window_seconds:,}")
        if self.lookback_windows < 1:
            raise ConfigError(f"{where}.lookback_windows: expected at least 1, got {self.lookback_windows}")


DeployTarget = Literal["local", "kserve", "vertex"]


@dataclass(frozen=True)
class DeployConfig:
    """Where a blessed, infra-checked version goes (components.serve.deploy)."""

    target: DeployTarget = "local"
    infra_check: bool = True
    infra_timeout_seconds: float = 180.0
    # local: the serving base a running `tfpipe serve` watches; empty: the export's base, where it already is
    local_base: str = ""
    # kserve: where the cluster reads the model base (<storage_uri> holds the numbered versions)
    storage_uri: str = ""
    namespace: str = "default"
    apply: bool = False  # apply with the kubernetes client (kubeconfig); else only write the manifest
    kube_context: str = ""
    # vertex
    project: str = ""
    region: str = "us-central1"
    serving_image: str = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    machine_type: str = "n1-standard-2"
    endpoint: str = ""  # an existing endpoint's resource name; empty: create one
    traffic_percent: int = 100

    def validate(self, where: str = "deploy") -> None:
        if self.target == "kserve" and not self.storage_uri:
            raise ConfigError(f"{where}.storage_uri: kserve needs the model base's URI (gs://, s3://, pvc://)")
        if self.target == "vertex" and (not self.project or not self.storage_uri.startswith("gs://")):
            raise ConfigError(f"{where}: vertex needs {where}.project and a gs:// {where}.storage_uri")
        if not 0 < self.traffic_percent <= 100:
            raise ConfigError(f"{where}.traffic_percent: expected 1..100, got {self.traffic_percent}")


@dataclass(frozen=True)
class WhatIfConfig:
    """What-If analysis of a trained model on the test split (components.whatif)."""

    features: tuple[str, ...] = ()  # for partial dependence; empty: every non-image feature
    grid_points: int = 10  # values per feature sweep (quantiles for numbers)
    ice_examples: int = 20  # per-example lines drawn with each partial dependence
    counterfactuals: int = 10  # sampled examples to find the nearest counterfactual of
    cost_ratio: float = 1.0  # binary labels: cost of a false positive / cost of a false negative
    fairness_feature: str = ""  # binary labels: per-slice thresholds across this feature's values
    saliency_examples: int = 4  # image models: most-confused examples with an occlusion map
    occlusion_patch: int = 2  # pixels per side of the occluding square

    def validate(self, where: str = "whatif") -> None:
        for name in ("grid_points", "occlusion_patch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.cost_ratio <= 0:
            raise ConfigError(f"{where}.cost_ratio: expected a number > 0, got {self.cost_ratio}")


@dataclass(frozen=True)
class PredictConfig:
    """Batch scoring (components.predict): a registry version's SavedModel over examples or a source."""

    keep: tuple[str, ...] = ()  # columns copied beside each prediction (passthrough)
    # local: batches scored in this process; beam: files (or BigQuery streams) scored by Beam workers
    engine: Engine = "local"
    batch_size: int = 8192  # rows per model call: each call has a fixed overhead, paid once a batch
    rows_per_file: int = 1_000_000  # a Parquet file of predictions is closed once it holds this many rows
    alias: str = "production"  # the batch pipeline: the registry alias whose version scores the new span
    # the batch pipeline: where predictions go, a folder (local or gs://) or bq://project.dataset.table; empty: the
    # step's own output folder
    out: str = ""

    def validate(self, where: str = "predict") -> None:
        for name in ("batch_size", "rows_per_file"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected an integer >= 1, got {getattr(self, name)}")
        if len(set(self.keep)) != len(self.keep):
            raise ConfigError(f"{where}.keep: a column is named twice in {list(self.keep)}")
        if not self.alias:
            raise ConfigError(f"{where}.alias: expected a registry alias, e.g. production")


@dataclass(frozen=True)
class BeamConfig:
    """The Apache Beam runner for steps with `engine: beam` (as TFX's beam_pipeline_args).

    The default runs in-process on this machine's cores; DataflowRunner runs on Google Cloud Dataflow with
    the component image as the workers' SDK container, so they run the step's own code.
    """

    runner: str = "DirectRunner"
    workers: int = 0  # local runner processes; 0: one per core
    options: tuple[str, ...] = ()  # more Beam pipeline arguments, passed through: ["--max_num_workers=20"]
    # DataflowRunner
    project: str = ""
    region: str = "us-central1"
    temp_location: str = ""  # gs://
    staging_location: str = ""  # gs://; empty: temp_location
    sdk_container_image: str = ""  # empty: pipeline.base_image
    service_account: str = ""

    def validate(self, where: str = "beam") -> None:
        if self.workers < 0:
            raise ConfigError(f"{where}.workers: expected an integer >= 0 (0: one per core), got {self.workers}")
        if self.runner == "DataflowRunner":
            for name in ("project", "temp_location"):
                if not getattr(self, name):
                    raise ConfigError(f"{where}.{name}: the DataflowRunner needs it")
            for name in ("temp_location", "staging_location"):
                value = getattr(self, name)
                if value and not value.startswith("gs://"):
                    raise ConfigError(f"{where}.{name}: expected a gs:// folder for Dataflow, got {value!r}")


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
        """The config with its local paths (runs root, source, export base) made absolute: the same folders
        from any working folder, and inside containers that mount them at their own paths."""
        from components.common.io import absolute

        return dataclasses.replace(self, runs_root=absolute(self.runs_root),
                                   ingest=dataclasses.replace(self.ingest, source=absolute(self.ingest.source)),
                                   export=dataclasses.replace(self.export, base=absolute(self.export.base)))

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
