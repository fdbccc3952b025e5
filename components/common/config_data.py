"""The data sections of the run config: where the data comes from and how it is read (ingest), what new
data is compared with (validate), and the Beam engine that can do both at scale (beam)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from components.common.errors import ConfigError


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

FeatureType = Literal["int", "float", "string", "text", "image", "int_list", "float_list", "string_list"]
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
    # Splits a CSV cell into the values of a list feature (say "|" for `red|green`). A CSV column holding it
    # in the sample (and not prose) is a list; `types.<column>: <type>_list` forces one. Parquet and JSON
    # lines carry lists natively.
    list_delimiter: str = ""
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
        if self.list_delimiter and self.list_delimiter in (self.csv.delimiter, self.csv.quote_char):
            raise ConfigError(f"{where}.list_delimiter: {self.list_delimiter!r} is also the CSV's delimiter or "
                              f"quote; expected another, such as '|' or ';'")
        if len(self.csv.delimiter) != 1:
            raise ConfigError(f"{where}.csv.delimiter: expected one character, got {self.csv.delimiter!r}")
        self.split.validate(f"{where}.split")

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
