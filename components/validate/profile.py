"""One feature as the checks see it, read from a data set's schema and statistics protos.

Reading the protos once, into plain fields, keeps the checks free of proto
plumbing and makes them read the same for ingest's files and TFDV's.
"""

from __future__ import annotations

from dataclasses import dataclass

from tensorflow_metadata.proto.v0 import schema_pb2

from components.common.metadata import (
    DataMetadata,
    Histogram,
    common_stats,
    numeric_stats,
    quantiles_histogram,
    text_distributions,
    value_counts,
)


@dataclass(frozen=True)
class Profile:
    name: str
    type: str  # INT, FLOAT, BYTES, TEXT or IMAGE
    count: int  # rows with a value
    missing: int
    minimum: float | None = None  # numbers with values
    maximum: float | None = None
    histogram: Histogram | None = None  # numbers with values: QUANTILES, as written
    # categorical: counts by value (the most frequent, when truncated); text: counts by token
    values: dict[str, float] | None = None
    # categorical: the values the data set allows (its schema's domain), None when it sets none
    domain: tuple[str, ...] | None = None
    # text: QUANTILES histograms of bytes_per_value and tokens_per_value; a list: of values_per_row
    distributions: dict[str, Histogram] | None = None

    @property
    def missing_fraction(self) -> float:
        rows = self.count + self.missing
        return self.missing / rows if rows else 0.0

    @property
    def categorical(self) -> bool:
        return self.values is not None

    @property
    def numeric(self) -> bool:
        return self.histogram is not None and not self.categorical


def profiles(meta: DataMetadata) -> dict[str, Profile]:
    """Every feature of the schema, with its statistics from the dataset over all rows."""
    stats = meta.feature_stats()
    out = {}
    for feature in meta.schema.feature:
        s = stats.get(feature.name)
        if s is None:
            out[feature.name] = Profile(feature.name, _type(feature), 0, meta.all_examples.num_examples)
            continue
        common = common_stats(s)
        num = numeric_stats(s)
        counts = value_counts(s)
        has_range = num is not None and common.num_non_missing > 0
        out[feature.name] = Profile(
            name=feature.name,
            type=_type(feature),
            count=common.num_non_missing,
            missing=common.num_missing,
            minimum=num.min if has_range else None,
            maximum=num.max if has_range else None,
            histogram=quantiles_histogram(s) if has_range else None,
            values=counts,
            domain=_domain(meta, feature, s.string_stats.unique, counts),
            distributions={**text_distributions(s), **_per_row(common)} or None,
        )
    return out


def _per_row(common) -> dict[str, Histogram]:
    """A list's values per row (TFDV's num_values_histogram), which drifts as a text's length does; a single value
    per row has none written."""
    return {"values_per_row": common.num_values_histogram} if common.num_values_histogram.buckets else {}


def _type(feature: schema_pb2.Feature) -> str:
    if feature.HasField("image_domain"):
        return "IMAGE"
    return "TEXT" if feature.HasField("natural_language_domain") else schema_pb2.FeatureType.Name(feature.type)


def _domain(meta: DataMetadata, feature: schema_pb2.Feature, unique: int, counts: dict[str, float] | None
            ) -> tuple[str, ...] | None:
    """The schema's string domain; for a categorical integer (a label of classes), every value seen, when the
    statistics list all of them."""
    domain = meta.domain(feature)
    if domain is None and feature.int_domain.is_categorical and counts is not None and unique == len(counts):
        return tuple(counts)
    return domain
