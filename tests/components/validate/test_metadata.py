"""Ingest's schema and statistics as TensorFlow Metadata protos, parsed back with the protos and checked against
the rows they describe."""

from collections import Counter

import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.common.metadata import (
    ALL_EXAMPLES,
    SERVING,
    DataMetadata,
    Histogram,
    mass_below,
    quantile_values,
    rebin,
)
from components.common.schema import Feature, Schema
from tests.conftest import people_rows


@pytest.fixture(scope="module")
def people(ingest):
    """People with some incomes and cities missing, ingested; the rows too."""
    header, rows = people_rows(400, seed=3)
    for i, row in enumerate(rows):
        if i % 10 == 0:
            row[2] = ""
        if i % 7 == 0:
            row[3] = ""
    return ingest("people-missing", header, rows), header, rows


@pytest.fixture(scope="module")
def parsed(people, tmp_path_factory):
    """Both files written and read back with nothing but the protos."""
    folder, _, _ = people
    out = tmp_path_factory.mktemp("protos")
    DataMetadata.read(folder).write(str(out))
    schema = text_format.Parse((out / "schema.pbtxt").read_text(), schema_pb2.Schema())
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString((out / "stats.pb").read_bytes())
    return schema, stats, out


def column(header, rows, name):
    index = header.index(name)
    return [r[index] for r in rows]


def test_schema_types_presence_domains_and_label(people, parsed):
    _, header, rows = people
    schema, _, _ = parsed
    features = {f.name: f for f in schema.feature}
    assert list(features) == header
    assert {n: schema_pb2.FeatureType.Name(f.type) for n, f in features.items()} == \
        {"id": "INT", "age": "INT", "income": "FLOAT", "city": "BYTES", "label": "INT"}
    incomes = column(header, rows, "income")
    assert features["income"].presence.min_fraction == pytest.approx(sum(v != "" for v in incomes) / len(rows))
    assert features["age"].presence.min_fraction == 1.0
    cities = {v for v in column(header, rows, "city") if v}
    domains = {d.name: set(d.value) for d in schema.string_domain}
    assert features["city"].domain == "city"
    assert domains == {"city": cities}
    ages = [int(v) for v in column(header, rows, "age")]
    assert (features["age"].int_domain.min, features["age"].int_domain.max) == (min(ages), max(ages))
    present = [float(v) for v in incomes if v]
    assert features["income"].float_domain.min == pytest.approx(min(present), rel=1e-6)
    assert features["income"].float_domain.max == pytest.approx(max(present), rel=1e-6)
    assert list(features["label"].not_in_environment) == [SERVING]
    assert features["label"].int_domain.is_categorical
    assert list(schema.default_environment) == ["TRAINING", SERVING]
    assert [n for n, f in features.items() if f.not_in_environment] == ["label"]


def test_statistics_count_what_the_rows_hold(people, parsed):
    _, header, rows = people
    _, stats, _ = parsed
    everything = stats.datasets[0]
    assert everything.name == ALL_EXAMPLES
    assert everything.num_examples == len(rows)
    by_name = {f.path.step[0]: f for f in everything.features}

    incomes = np.array([float(v) for v in column(header, rows, "income") if v])
    income = by_name["income"].num_stats
    assert income.common_stats.num_non_missing == len(incomes)
    assert income.common_stats.num_missing == len(rows) - len(incomes)
    assert (income.min, income.max) == (pytest.approx(incomes.min(), rel=1e-6), pytest.approx(incomes.max(), rel=1e-6))
    assert income.mean == pytest.approx(incomes.mean(), rel=1e-6)
    assert income.std_dev == pytest.approx(incomes.std(), rel=1e-4)
    assert income.median == pytest.approx(np.median(incomes), rel=0.01)
    standard, quantiles = income.histograms
    assert quantiles.type == Histogram.QUANTILES
    assert standard.type == Histogram.STANDARD
    for h in (standard, quantiles):
        assert len(h.buckets) == 10
        assert sum(b.sample_count for b in h.buckets) == pytest.approx(len(incomes))
        assert h.buckets[0].low_value == income.min
        assert h.buckets[-1].high_value == income.max
    widths = {round(b.high_value - b.low_value, 6) for b in standard.buckets}
    assert len(widths) == 1
    deciles = [b.high_value for b in quantiles.buckets[:-1]]
    # Deciles re-binned from ingest's histogram lie within a few values of the exact ones.
    ranks = np.searchsorted(np.sort(incomes), deciles) / len(incomes)
    np.testing.assert_allclose(ranks, np.linspace(0.1, 0.9, 9), atol=0.02)

    cities = Counter(v for v in column(header, rows, "city") if v)
    city = by_name["city"].string_stats
    assert city.common_stats.num_missing == len(rows) - sum(cities.values())
    assert city.unique == len(cities)
    assert {v.value: v.frequency for v in city.top_values} == cities
    ranked = sorted(cities.items(), key=lambda item: (-item[1], item[0]))  # equal counts in value order
    assert [(b.label, b.sample_count) for b in city.rank_histogram.buckets] == ranked
    assert [b.low_rank for b in city.rank_histogram.buckets] == list(range(len(cities)))
    lengths = [len(v) for v in column(header, rows, "city") if v]
    assert city.avg_length == pytest.approx(np.mean(lengths))

    labels = Counter(column(header, rows, "label"))
    label = by_name["label"]
    assert label.type == statistics_pb2.FeatureNameStatistics.INT
    assert {b.label: b.sample_count for b in label.string_stats.rank_histogram.buckets} == \
        {str(k): v for k, v in labels.items()}


def test_each_split_has_its_rows_and_label_counts(people, parsed):
    folder, _, rows = people
    _, stats, _ = parsed
    schema = Schema.read(folder)
    splits = {d.name: d for d in stats.datasets[1:]}
    assert {n: d.num_examples for n, d in splits.items()} == {f"split:{s}": n for s, n in schema.splits.items()}
    for d in splits.values():
        (label,) = d.features
        assert label.path.step == ["label"]
        assert sum(b.sample_count for b in label.string_stats.rank_histogram.buckets) == d.num_examples
    assert sum(d.num_examples for d in splits.values()) == len(rows)


def test_a_folder_with_the_protos_reads_them_instead_of_the_json(people, parsed):
    folder, _, _ = people
    schema, stats, out = parsed
    from_protos = DataMetadata.read(str(out))
    assert from_protos.schema == schema
    assert from_protos.statistics == stats
    assert from_protos == DataMetadata.read(folder)
    assert from_protos.label == "label"
    assert from_protos.split_rows == Schema.read(folder).splits


def test_a_vocabulary_cut_short_sets_no_domain_and_zeros_are_counted_when_ingest_counts_them():
    numbers = {"count": 4, "missing": 0, "min": 0.0, "max": 3.0, "mean": 1.5, "std": 1.1, "zeros": 1,
               "histogram": {"edges": [0.0, 3.0], "counts": [0, 3, 1]}}
    words = {"count": 4, "missing": 0, "unique": 3, "top": [["a", 2], ["b", 1]], "approximate": True}
    schema = Schema(features=(Feature("n", "float", numbers), Feature("w", "string", words)), label="n",
                    splits={"train": 4})
    meta = DataMetadata.from_ingest(schema, {"train": {"0.0": 1, "1.0": 1, "2.0": 1, "3.0": 1}})
    assert not meta.schema.string_domain
    assert not meta.schema.feature[1].domain
    n = meta.all_examples.features[0]
    assert n.num_stats.num_zeros == 1
    assert not n.HasField("string_stats")  # a float label stays numeric
    assert meta.split_rows == {"train": 4}


def test_a_constant_number_is_one_point():
    seven = {"count": 4, "missing": 0, "min": 7.0, "max": 7.0, "mean": 7.0, "std": 0.0,
             "histogram": {"edges": [7.0], "counts": [0, 4]}}
    schema = Schema(features=(Feature("c", "int", seven), Feature("label", "string", {"count": 4, "missing": 0})),
                    label="label")
    standard, quantiles = DataMetadata.from_ingest(schema, {}).all_examples.features[0].num_stats.histograms
    assert [(b.low_value, b.high_value, b.sample_count) for b in standard.buckets] == [(7, 7, 4)]
    assert {(b.low_value, b.high_value) for b in quantiles.buckets} == {(7, 7)}
    assert sum(b.sample_count for b in quantiles.buckets) == pytest.approx(4)


def test_histogram_arithmetic():
    h = Histogram(buckets=[Histogram.Bucket(low_value=0, high_value=2, sample_count=4),
                           Histogram.Bucket(low_value=2, high_value=2, sample_count=2)])
    np.testing.assert_allclose(mass_below(h, [-1, 1, 2, 3]), [0, 2, 4, 6])
    np.testing.assert_allclose(mass_below(h, [2], inclusive=True), [6])
    # (-inf, 0), [0, 1), [1, 2], (2, inf): the point at 2 belongs to the closed last bin
    np.testing.assert_allclose(rebin(h, [0, 1, 2]), [0, 2, 4, 0])
    np.testing.assert_allclose(quantile_values(h, [0, 0.5, 1]), [0, 1.5, 2])
