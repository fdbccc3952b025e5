"""The serving sections of the run config: the exported versions (export), the model server (serve), where
they are deployed (deploy), what watches them (monitor), what explains them (whatif) and batch scoring
(predict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from components.common.config_data import BigQueryOptions, DriftThresholds, Engine, SourceFormat
from components.common.config_training import Threshold
from components.common.errors import ConfigError


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

RetrainOn = Literal["skew", "drift", "quality", "never"]
# what monitor.quality may bound: a classifier's (calibration, `ece`, of a binary one) and a regressor's
CLASSIFICATION_QUALITY = ("accuracy", "balanced_accuracy", "auc", "ece")
REGRESSION_QUALITY = ("rmse", "mae")
EXAMPLE_KEY_HEADER = "X-Example-Key"  # a request's example keys, comma-separated, when its instances lack ingest.key


@dataclass(frozen=True)
class LabelsConfig:
    """The labels that arrive after the predictions (components.monitor.labels): one row per example key, read
    with ingest's readers. `source` is a file, folder, glob or bq:// table as `ingest.source`; with
    {YYYY}-{MM}-{DD} or {SPAN} every span present is read (labels accumulate, unlike a training span)."""

    source: str = ""
    format: SourceFormat = "auto"
    key: str = ""  # the column of example keys; empty: the training data's ingest.key
    label: str = ""  # the column of labels; empty: the training label's name
    # the column of when each label became known (epoch seconds, or an ISO 8601 date or time); empty: `known_at`
    # when a file has it, else the labels have no time and none is late
    known_at: str = ""
    bigquery: BigQueryOptions = BigQueryOptions()  # a bq:// source: the project billed, the endpoint


@dataclass(frozen=True)
class MonitorConfig:
    """Skew, drift and quality of served traffic (components.monitor): each window of logged requests against
    the training statistics (skew), against the window before it (drift) and, once labels arrive, the
    predictions against them (quality). The label's name in `features` sets the threshold of the model's
    predictions."""

    skew: DriftThresholds = DriftThresholds()
    drift: DriftThresholds = DriftThresholds()
    window_seconds: int = 3600  # windows start at multiples of this since the epoch (UTC)
    # which crossed thresholds start a training run: skew, drift, quality, a list of them, or never
    retrain_on: tuple[RetrainOn, ...] = ("never",)
    # the monitoring pipeline reads the last this many complete windows (the one under way waits for the next run)
    lookback_windows: int = 2
    labels: LabelsConfig = LabelsConfig()
    # metric (accuracy, balanced_accuracy, auc, ece; rmse, mae) -> bounds per window and slice: at_least /
    # at_most its value, or max_worse / max_worse_relative than the production model's blessed evaluation
    quality: dict[str, Threshold] = field(default_factory=dict)
    min_labels: int = 100  # a window (or slice) with fewer labelled predictions is inconclusive, never passed
    # a label known more than this long after its window ended is late: counted and shown, not scored
    max_label_delay_seconds: int = 30 * 86400
    slices: tuple[str, ...] = ()  # string features whose values slice quality; empty: every string feature
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
        if not self.retrain_on or ("never" in self.retrain_on and len(self.retrain_on) > 1):
            raise ConfigError(f"{where}.retrain_on: expected never, or skew, drift, quality or a list of them, got "
                              f"{list(self.retrain_on)}")
        if "quality" in self.retrain_on and not self.quality:
            raise ConfigError(f"{where}.retrain_on: quality needs thresholds in {where}.quality, e.g. "
                              "accuracy: {max_worse: 0.05}")
        for name, t in self.quality.items():
            if name not in CLASSIFICATION_QUALITY + REGRESSION_QUALITY:
                raise ConfigError(f"{where}.quality.{name}: not a quality metric; expected one of "
                                  f"{', '.join(CLASSIFICATION_QUALITY + REGRESSION_QUALITY)}")
            t.validate(f"{where}.quality.{name}")
        if self.min_labels < 1 or self.max_label_delay_seconds < 0:
            raise ConfigError(f"{where}.min_labels >= 1 and {where}.max_label_delay_seconds >= 0 expected, got "
                              f"{self.min_labels} and {self.max_label_delay_seconds}")

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
    # comparing two models: resamples of the test rows behind each 95% interval of a difference
    bootstrap_resamples: int = 1000
    disagreement_examples: int = 10  # comparing two classifiers: the most confident disagreements listed

    def validate(self, where: str = "whatif") -> None:
        for name in ("grid_points", "occlusion_patch", "bootstrap_resamples"):
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
