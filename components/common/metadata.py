"""tfpipe's schema and statistics in TensorFlow Metadata's formats: what TFDV, Facets and Vertex Model Monitoring read.

Ingest keeps its statistics in `schema.json` / `stats.json`. `DataMetadata` turns
them into a `tensorflow_metadata` `Schema` (written as text, `schema.pbtxt`) and
a `DatasetFeatureStatisticsList` (binary, `stats.pb`), so that other tools can
read a run's data, and so that the validate step compares one format whichever
folder it is given, ours or TFDV's.

Schema, per feature:
- `type` INT, FLOAT or BYTES (strings and images); `value_count` 1..1 (a row
  holds one value or none);
- `presence`: `min_fraction` is the fraction of rows that had the value,
  `min_count` 1;
- strings: a schema-level `string_domain` named after the feature (as TFDV's
  `infer_schema` writes it), only when the vocabulary is complete (ingest kept
  every distinct value): a truncated list would call valid values anomalies;
- numbers: `int_domain` / `float_domain` with the observed min and max; a
  classification label of integers is `is_categorical`;
- text: `natural_language_domain` (TFDV's mark of free text);
- images: `image_domain`;
- the label: `not_in_environment: "SERVING"`, with `default_environment`
  TRAINING and SERVING, TFDV's way of saying that serving requests lack it.

Statistics: one dataset, `All Examples` (TFDV's default slice), over every row,
because ingest gathers column statistics over all rows, not per split. Per split
ingest records only row and label counts, so each split gets a dataset
`split:<name>` with its `num_examples` and the label alone. Per feature:
- common stats: non-missing, missing, values per row (1);
- numbers: mean, std_dev, min, max, `num_zeros` (when ingest counts `zeros`;
  otherwise 0, as the value is unknown), median, and two histograms: STANDARD
  (10 equal-width buckets over [min, max]) and QUANTILES (10 equal-mass buckets),
  both re-binned from ingest's histogram assuming values spread evenly within
  each of its bins (ingest's bins are quantiles of the typed sample, about 5%
  of the rows each, so the error stays within a bin);
- strings (and a categorical label): `unique`, `top_values` and a
  `rank_histogram` of the values ingest kept (the most frequent
  `ingest.vocab_top_n`), `avg_length` over those values (exact when the
  vocabulary is complete);
- text: `string_stats` of its tokens (`unique`, `top_values` and `rank_histogram` as
  strings have them, of the `ingest.vocab_top_n` most frequent tokens) with
  `avg_length` the values' mean length in bytes; TFMD has no field for the
  distributions of lengths, so two `custom_stats` hold them, TFDV's
  `nl_statistics` (a `NaturalLanguageStatistics` in `any`: min, max and a
  QUANTILES histogram of tokens per value) and `text_length` (a QUANTILES
  histogram of bytes per value);
- images: common stats only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from google.protobuf import message, text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.common import io
from components.common.errors import TfpipeError
from components.common.schema import Feature, Schema, with_lists
from components.common.task import MAX_CLASSES

SCHEMA_PBTXT = "schema.pbtxt"
STATS_PB = "stats.pb"
ALL_EXAMPLES = "All Examples"  # TFDV's name for the slice of every row
SPLIT_PREFIX = "split:"
HISTOGRAM_BUCKETS = 10  # TFDV's default for both histograms
TRAINING, SERVING = "TRAINING", "SERVING"
NL_STATISTICS, TEXT_LENGTH = "nl_statistics", "text_length"  # a text feature's custom_stats

Histogram = statistics_pb2.Histogram
FeatureStats = statistics_pb2.FeatureNameStatistics

_SCHEMA_TYPES = with_lists({"int": schema_pb2.INT, "float": schema_pb2.FLOAT, "string": schema_pb2.BYTES,
                 "text": schema_pb2.BYTES, "image": schema_pb2.BYTES})
# A list is described by its values' type, its lengths by value counts.
_STATS_TYPES = with_lists({"int": FeatureStats.INT, "float": FeatureStats.FLOAT, "string": FeatureStats.STRING,
                           "text": FeatureStats.STRING, "image": FeatureStats.BYTES})


class MetadataError(TfpipeError):
    """A schema.pbtxt / stats.pb (or the JSON they come from) cannot be read."""


@dataclass(frozen=True)
class DataMetadata:
    """One data set's schema and statistics as TensorFlow Metadata protos."""

    schema: schema_pb2.Schema
    statistics: statistics_pb2.DatasetFeatureStatisticsList

    @classmethod
    def from_ingest(cls, schema: Schema, split_labels: Mapping[str, Mapping[str, int]]) -> DataMetadata:
        """From ingest's schema and its per-split label counts (`stats.json`'s `labels`)."""
        labels = Counter()
        for counts in split_labels.values():
            labels.update(counts)
        categorical = _categorical_label(schema.label_feature)
        proto = schema_pb2.Schema(default_environment=[TRAINING, SERVING])
        datasets = [statistics_pb2.DatasetFeatureStatistics(name=ALL_EXAMPLES, num_examples=_rows(schema))]
        for f in schema.features:
            is_label = f.name == schema.label
            _add_feature_schema(proto, f, is_label, categorical)
            datasets[0].features.append(_feature_stats(f, labels if is_label and categorical else None))
        label = schema.label_feature
        for split, rows in schema.splits.items():
            counts = Counter(split_labels.get(split, {}))
            stats = _label_split_stats(label, counts, categorical)
            datasets.append(statistics_pb2.DatasetFeatureStatistics(
                name=f"{SPLIT_PREFIX}{split}", num_examples=rows, features=[stats]))
        return cls(proto, statistics_pb2.DatasetFeatureStatisticsList(datasets=datasets))

    @classmethod
    def read(cls, folder: str) -> DataMetadata:
        """`schema.pbtxt` + `stats.pb` when the folder has them (ours or TFDV's), else ingest's JSON files."""
        folder = folder.rstrip("/")
        pbtxt, pb = f"{folder}/{SCHEMA_PBTXT}", f"{folder}/{STATS_PB}"
        if io.exists(pbtxt) and io.exists(pb):
            return cls(read_schema_pbtxt(pbtxt), read_stats_pb(pb))
        schema = Schema.read(folder)
        stats_json = f"{folder}/stats.json"
        if not io.exists(stats_json):
            raise MetadataError(f"{stats_json}: statistics not found (run the ingest step first)")
        try:
            split_labels = io.read_json(stats_json)["labels"]
        except (ValueError, KeyError, TypeError) as e:
            raise MetadataError(f"{stats_json}: expected ingest's statistics with per-split 'labels': {e}") from None
        return cls.from_ingest(schema, split_labels)

    def write(self, folder: str) -> None:
        self.write_schema_pbtxt(f"{folder}/{SCHEMA_PBTXT}")
        self.write_stats_pb(f"{folder}/{STATS_PB}")

    def write_schema_pbtxt(self, path: str) -> None:
        io.write_text(path, text_format.MessageToString(self.schema))

    def write_stats_pb(self, path: str) -> None:
        io.write_bytes(path, self.statistics.SerializeToString())

    # What readers of the protos ask: the same answers for our files and TFDV's.

    @property
    def label(self) -> str:
        """The feature absent at serving time (TFDV's convention for the label); "" when none is marked."""
        return next((f.name for f in self.schema.feature if SERVING in f.not_in_environment), "")

    @property
    def all_examples(self) -> statistics_pb2.DatasetFeatureStatistics:
        """The dataset over every row: TFDV's default slice, or the only dataset."""
        datasets = self.statistics.datasets
        chosen = [d for d in datasets if d.name == ALL_EXAMPLES] or ([datasets[0]] if len(datasets) == 1 else [])
        if not chosen:
            raise MetadataError(f"statistics hold {len(datasets)} datasets and none is {ALL_EXAMPLES!r}")
        return chosen[0]

    @property
    def split_rows(self) -> dict[str, int]:
        return {d.name[len(SPLIT_PREFIX):]: d.num_examples for d in self.statistics.datasets
                if d.name.startswith(SPLIT_PREFIX)}

    def feature_schemas(self) -> dict[str, schema_pb2.Feature]:
        return {f.name: f for f in self.schema.feature}

    def feature_stats(self) -> dict[str, FeatureStats]:
        return {stats_name(f): f for f in self.all_examples.features}

    def domain(self, feature: schema_pb2.Feature) -> tuple[str, ...] | None:
        """The string values the schema allows `feature`, or None when it sets no string domain."""
        if feature.HasField("string_domain"):
            return tuple(feature.string_domain.value)
        if feature.domain:
            for d in self.schema.string_domain:
                if d.name == feature.domain:
                    return tuple(d.value)
        return None


def read_schema_pbtxt(path: str) -> schema_pb2.Schema:
    if not io.exists(path):
        raise MetadataError(f"{path}: schema not found")
    try:
        with io.open_binary(path) as f:
            return text_format.Parse(f.read().decode(), schema_pb2.Schema())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise MetadataError(f"{path}: not a tensorflow_metadata Schema in text format: {e}") from None


def read_stats_pb(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    if not io.exists(path):
        raise MetadataError(f"{path}: statistics not found")
    try:
        with io.open_binary(path) as f:
            return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    except message.DecodeError as e:
        raise MetadataError(f"{path}: not a binary DatasetFeatureStatisticsList: {e}") from None


def stats_name(stats: FeatureStats) -> str:
    """A feature's name in statistics: TFDV writes `path`, older writers `name`."""
    return ".".join(stats.path.step) if stats.path.step else stats.name


def numeric_stats(stats: FeatureStats) -> statistics_pb2.NumericStatistics | None:
    return stats.num_stats if stats.HasField("num_stats") else None


def common_stats(stats: FeatureStats) -> statistics_pb2.CommonStatistics:
    for kind in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
        if stats.HasField(kind):
            return getattr(stats, kind).common_stats
    return statistics_pb2.CommonStatistics()


def value_counts(stats: FeatureStats) -> dict[str, float] | None:
    """A categorical feature's counts by value (its rank histogram, else its top values); None for others."""
    if not stats.HasField("string_stats"):
        return None
    s = stats.string_stats
    if s.rank_histogram.buckets:
        return {b.label: b.sample_count for b in s.rank_histogram.buckets}
    return {v.value: v.frequency for v in s.top_values}


def quantiles_histogram(stats: FeatureStats) -> Histogram | None:
    """A numeric feature's QUANTILES histogram (its STANDARD one when it has no other), or None."""
    num = numeric_stats(stats)
    if num is None or not num.histograms:
        return None
    chosen = [h for h in num.histograms if h.type == Histogram.QUANTILES]
    return chosen[0] if chosen else num.histograms[0]


# Histograms as TFDV reads them: buckets [low, high) of `sample_count` values spread evenly within,
# or a point mass where low == high.

def mass_below(histogram: Histogram, points: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """How many values are below each of `points` (at or below, with `inclusive`)."""
    at = np.asarray(points, dtype=np.float64)[:, None]
    low, high, count = (np.array([getattr(b, k) for b in histogram.buckets], dtype=np.float64)
                        for k in ("low_value", "high_value", "sample_count"))
    width = high - low
    spread = np.clip((at - low) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    point = at >= low if inclusive else at > low
    return (count * np.where(width > 0, spread, point)).sum(axis=1)


def rebin(histogram: Histogram, boundaries: np.ndarray) -> np.ndarray:
    """Counts in (-inf, b0), [b0, b1), ..., [b_n-1, b_n], (b_n, inf) for sorted `boundaries` b0..b_n."""
    b = np.asarray(boundaries, dtype=np.float64)
    below = np.concatenate([mass_below(histogram, b[:1]), mass_below(histogram, b[1:-1]),
                            mass_below(histogram, b[-1:], inclusive=True)])
    total = sum(x.sample_count for x in histogram.buckets)
    return np.diff(np.concatenate([[0.0], below, [total]]))


def boundaries(histogram: Histogram) -> np.ndarray:
    return np.unique([v for b in histogram.buckets for v in (b.low_value, b.high_value)])


def quantile_values(histogram: Histogram, fractions: np.ndarray) -> np.ndarray:
    """The values below which each fraction of the histogram's mass lies (inverse of `mass_below`)."""
    xs, cumulative, total = [], [], 0.0
    for b in sorted((b for b in histogram.buckets if b.sample_count > 0), key=lambda b: b.low_value):
        xs += [b.low_value, b.high_value]
        cumulative += [total, total + b.sample_count]
        total += b.sample_count
    return np.interp(np.asarray(fractions) * total, cumulative, xs)


def _ingest_histogram(stats: dict) -> Histogram:
    """Ingest's histogram as buckets: counts[0] lies in [min, edges[0]), counts[i] in [edges[i-1], edges[i]),
    the last count in [edges[-1], max] (a point when max is the last edge)."""
    edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
    lows = [stats["min"], *edges]
    highs = [*edges, stats["max"]]
    return Histogram(buckets=[Histogram.Bucket(low_value=lo, high_value=max(lo, hi), sample_count=c)
                              for lo, hi, c in zip(lows, highs, counts, strict=True) if c])


def _standard(source: Histogram, low: float, high: float, count: int) -> Histogram:
    if high == low:
        return Histogram(type=Histogram.STANDARD,
                         buckets=[Histogram.Bucket(low_value=low, high_value=high, sample_count=count)])
    edges = np.linspace(low, high, HISTOGRAM_BUCKETS + 1)
    counts = rebin(source, edges)[1:-1]
    return Histogram(type=Histogram.STANDARD, buckets=[
        Histogram.Bucket(low_value=lo, high_value=hi, sample_count=c)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)])


def _quantiles(source: Histogram, count: int) -> Histogram:
    edges = quantile_values(source, np.linspace(0.0, 1.0, HISTOGRAM_BUCKETS + 1))
    return Histogram(type=Histogram.QUANTILES, buckets=[
        Histogram.Bucket(low_value=lo, high_value=hi, sample_count=count / HISTOGRAM_BUCKETS)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)])


def _categorical_label(label: Feature) -> bool:
    """Strings, and integers over a range a classifier can have one output per value of (as in common.task)."""
    if label.type == "string":
        return True
    low, high = label.stats.get("min"), label.stats.get("max")
    return label.type == "int" and low is not None and high - low + 1 <= MAX_CLASSES


def _complete_vocabulary(f: Feature) -> bool:
    s = f.stats
    return f.element_type == "string" and not s.get("approximate") and s.get("unique", 0) == len(s.get("top", []))


def _rows(schema: Schema) -> int:
    label = schema.label_feature.stats
    return label.get("count", 0) + label.get("missing", 0)


def _add_feature_schema(proto: schema_pb2.Schema, f: Feature, is_label: bool, categorical: bool) -> None:
    s = f.stats
    rows = s.get("count", 0) + s.get("missing", 0)
    feature = proto.feature.add(name=f.name, type=_SCHEMA_TYPES[f.type])
    if f.is_list:
        length = s.get("length", {})
        feature.value_count.min, feature.value_count.max = \
            (int(length["min"]), int(length["max"])) if length.get("count") else (0, 0)
    else:
        feature.value_count.min = feature.value_count.max = 1
    feature.presence.min_count = 1
    feature.presence.min_fraction = s.get("count", 0) / rows if rows else 0.0
    if f.type == "image":
        feature.image_domain.SetInParent()
    elif f.type == "text":
        feature.natural_language_domain.SetInParent()
    elif _complete_vocabulary(f):
        proto.string_domain.add(name=f.name, value=f.vocabulary)
        feature.domain = f.name
    elif f.element_type in ("int", "float") and s.get("min") is not None:
        integer = f.element_type == "int"
        domain = feature.int_domain if integer else feature.float_domain
        domain.min, domain.max = (int(s["min"]), int(s["max"])) if integer else (s["min"], s["max"])
        if f.type == "int" and is_label and categorical:
            feature.int_domain.is_categorical = True
    if is_label:
        feature.not_in_environment.append(SERVING)


def _common(count: int, missing: int) -> statistics_pb2.CommonStatistics:
    one = 1 if count else 0
    return statistics_pb2.CommonStatistics(num_non_missing=count, num_missing=missing, min_num_values=one,
                                           max_num_values=one, avg_num_values=float(one), tot_num_values=count)


def _list_common(s: dict) -> statistics_pb2.CommonStatistics:
    """A list's rows, and how many values they hold: the bounds, the mean, the total and their distribution."""
    common = _common(s.get("count", 0), s.get("missing", 0))
    length = s.get("length", {})
    if length.get("count"):
        common.min_num_values, common.max_num_values = int(length["min"]), int(length["max"])
        common.avg_num_values, common.tot_num_values = length["mean"], s.get("values", 0)
        common.num_values_histogram.CopyFrom(_quantiles(_ingest_histogram(length), length["count"]))
    return common


def _feature_stats(f: Feature, label_counts: Counter | None) -> FeatureStats:
    """`label_counts` (a categorical label's classes) makes even an integer label categorical, as TFDV shows it.

    A list's values are described as a column of their type would be (`count` there is of values)."""
    s = {**f.stats, "count": f.stats.get("values", 0)} if f.is_list else f.stats
    out = FeatureStats(type=_STATS_TYPES[f.type], path={"step": [f.name]})
    common = _list_common(f.stats) if f.is_list else _common(s.get("count", 0), s.get("missing", 0))
    if label_counts is not None:
        out.string_stats.CopyFrom(_string_stats(common, label_counts, len(label_counts)))
    elif f.element_type in ("string", "text"):
        out.string_stats.CopyFrom(_string_stats(common, Counter(dict(s.get("top", []))), s.get("unique", 0)))
        if f.type == "text" and s.get("count"):
            out.string_stats.avg_length = s["length"]["mean"]
            out.custom_stats.extend(_text_distributions(s))
    elif f.element_type in ("int", "float"):
        out.num_stats.CopyFrom(_numeric_stats(common, s))
    else:
        out.bytes_stats.common_stats.CopyFrom(common)
    return out


def _numeric_stats(common: statistics_pb2.CommonStatistics, s: dict) -> statistics_pb2.NumericStatistics:
    out = statistics_pb2.NumericStatistics(common_stats=common)
    if not s.get("count"):
        return out
    source = _ingest_histogram(s)
    out.mean, out.std_dev, out.min, out.max = s["mean"], s["std"], s["min"], s["max"]
    out.num_zeros = s.get("zeros", 0)
    out.median = float(quantile_values(source, np.array([0.5]))[0])
    out.histograms.extend([_standard(source, s["min"], s["max"], s["count"]), _quantiles(source, s["count"])])
    return out


def _text_distributions(s: dict) -> list[statistics_pb2.CustomStatistic]:
    """A text feature's tokens and bytes per value, as QUANTILES histograms (see the module's docstring)."""
    tokens, length = s["token_count"], s["length"]
    nl = statistics_pb2.NaturalLanguageStatistics(
        min_sequence_length=int(tokens["min"]), max_sequence_length=int(tokens["max"]),
        sequence_length_histogram=_quantiles(_ingest_histogram(tokens), tokens["count"]))
    packed = statistics_pb2.CustomStatistic(name=NL_STATISTICS)
    packed.any.Pack(nl)
    return [packed, statistics_pb2.CustomStatistic(
        name=TEXT_LENGTH, histogram=_quantiles(_ingest_histogram(length), length["count"]))]


def text_distributions(stats: FeatureStats) -> dict[str, Histogram]:
    """A text feature's distributions of tokens and bytes per value, by name; empty for other features."""
    out = {}
    for custom in stats.custom_stats:
        if custom.name == TEXT_LENGTH:
            out["bytes_per_value"] = custom.histogram
        elif custom.name == NL_STATISTICS and custom.any.Is(statistics_pb2.NaturalLanguageStatistics.DESCRIPTOR):
            nl = statistics_pb2.NaturalLanguageStatistics()
            custom.any.Unpack(nl)
            out["tokens_per_value"] = nl.sequence_length_histogram
    return out


def _string_stats(common: statistics_pb2.CommonStatistics, counts: Counter, unique: int
                  ) -> statistics_pb2.StringStatistics:
    ranked = counts.most_common()
    total = sum(counts.values())
    return statistics_pb2.StringStatistics(
        common_stats=common,
        unique=unique,
        top_values=[statistics_pb2.StringStatistics.FreqAndValue(value=v, frequency=c) for v, c in ranked],
        avg_length=sum(len(v.encode()) * c for v, c in ranked) / total if total else 0.0,
        rank_histogram=statistics_pb2.RankHistogram(buckets=[
            statistics_pb2.RankHistogram.Bucket(low_rank=i, high_rank=i, label=v, sample_count=c)
            for i, (v, c) in enumerate(ranked)]),
    )


def _label_split_stats(label: Feature, counts: Counter, categorical: bool) -> FeatureStats:
    """A split's label: its class counts when it is categorical; otherwise only how many rows hold it."""
    total = sum(counts.values())
    out = FeatureStats(type=_STATS_TYPES[label.type], path={"step": [label.name]})
    common = _common(total, 0)
    if categorical:
        out.string_stats.CopyFrom(_string_stats(common, counts, len(counts)))
    else:
        out.num_stats.common_stats.CopyFrom(common)
    return out
