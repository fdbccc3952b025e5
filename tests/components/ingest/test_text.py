"""The text type: inferred from prose or forced, bounded by ingest.max_text_bytes, and counted in tokens as the
model's TextVectorization splits them, the same on both engines."""

import dataclasses
import datetime
import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from components.common.config import IngestConfig
from components.common.metadata import DataMetadata, text_distributions
from components.common.schema import Schema
from components.data import churn, reviews, write_penguins
from components.ingest import IngestError, run
from tests.components.ingest.test_beam import THREADS, assert_close, assert_merged_in_any_order_equal_one_pass
from tests.conftest import write_csv


def types_of(out) -> dict[str, str]:
    return {f.name: f.type for f in Schema.read(str(out)).features}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    return reviews.write(folder / "reviews.csv", count=600), folder


@pytest.fixture(scope="module")
def ingested(corpus):
    source, folder = corpus
    run(IngestConfig(source=str(source), label="sentiment", key="review_id"), str(folder / "out"))
    return folder / "out"


def test_prose_is_text_and_categories_ids_and_labels_stay_strings(ingested, tmp_path):
    # Without ingest.list_delimiter the two lists are single values: the `|`-joined text of each cell.
    assert types_of(ingested) == {"review_id": "string", "product": "string", "helpful_votes": "int",
                                  "review": "text", "sentiment": "string", "tags": "string",
                                  "past_ratings": "string"}
    run(IngestConfig(source=str(write_penguins(tmp_path / "p.csv")), label="species"), str(tmp_path / "p"))
    assert {n: t for n, t in types_of(tmp_path / "p").items() if t in ("string", "text")} == \
        {"species": "string", "island": "string", "sex": "string"}
    header, body = churn.rows(datetime.date(2026, 11, 1), count=300)
    run(IngestConfig(source=str(write_csv(tmp_path / "c.csv", header, body)), label="churned"), str(tmp_path / "c"))
    assert {n: t for n, t in types_of(tmp_path / "c").items() if t in ("string", "text")} == \
        {"customer_id": "string", "plan": "string", "region": "string"}


def test_text_can_be_forced_but_not_on_the_label(corpus, tmp_path):
    source, _ = corpus
    run(IngestConfig(source=str(source), label="sentiment", types={"product": "text"}), str(tmp_path / "out"))
    assert types_of(tmp_path / "out")["product"] == "text"
    with pytest.raises(IngestError, match=r"ingest.types.sentiment: the label is one class or number per row, "
                                          r"not text"):
        run(IngestConfig(source=str(source), label="sentiment", types={"sentiment": "text"}), str(tmp_path / "no"))
    assert not (tmp_path / "no").exists()


def test_a_text_over_max_text_bytes_is_a_rejected_row_named_by_column_and_line(tmp_path):
    body = reviews.rows(200)
    body[9][3] = "word " * 60  # line 11 (after the header): 300 bytes
    source = write_csv(tmp_path / "r.csv", reviews.HEADER, body)
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(source), label="sentiment", max_text_bytes=256,
                              max_rejected_fraction=0.05), str(out))
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert result.rejected == 1
    assert [(r["line"], r["reason"]) for r in rejected] == \
        [(11, "column 'review': text of 300 bytes, longer than ingest.max_text_bytes=256")]
    assert Schema.read(str(out)).feature("review").stats["length"]["max"] <= 256


def test_statistics_count_the_tokens_keras_makes_and_the_bytes_and_tokens_of_each_text(corpus, ingested):
    import keras

    source, _ = corpus
    texts = [row[3] for row in reviews.rows(600)]
    vectorize = keras.layers.TextVectorization()  # the defaults: lower-case, strip punctuation, split on whitespace
    vectorize.adapt(np.array(texts))
    vocabulary = vectorize.get_vocabulary()
    split = [[vocabulary[i] for i in ids if i] for ids in np.asarray(vectorize(np.array(texts)))]
    expected = Counter(token for tokens in split for token in tokens)
    stats = Schema.read(str(ingested)).feature("review").stats
    assert stats["count"] == 600
    assert stats["missing"] == 0
    assert stats["tokens"] == sum(expected.values())
    assert stats["unique"] == len(expected)
    assert dict(stats["top"]) == dict(expected.most_common(100))
    assert [v for v, _ in stats["top"][:10]] == vectorize.get_vocabulary()[2:12]
    lengths = [len(t.encode()) for t in texts]
    assert (stats["length"]["min"], stats["length"]["max"]) == (min(lengths), max(lengths))
    assert stats["length"]["mean"] == pytest.approx(np.mean(lengths))
    assert stats["token_count"]["mean"] == pytest.approx(np.mean([len(t) for t in split]))
    assert sum(stats["token_count"]["equal_width"]["counts"]) == 600


def test_metadata_has_the_tokens_and_both_distributions_where_tfmd_keeps_them(ingested):
    meta = DataMetadata.read(str(ingested))
    feature = meta.feature_schemas()["review"]
    assert feature.HasField("natural_language_domain")
    assert meta.domain(feature) is None
    stats = meta.feature_stats()["review"]
    schema_stats = Schema.read(str(ingested)).feature("review").stats
    assert stats.string_stats.avg_length == pytest.approx(schema_stats["length"]["mean"])
    assert [(v.value, v.frequency) for v in stats.string_stats.top_values][:3] == \
        [tuple(pair) for pair in schema_stats["top"][:3]]
    distributions = text_distributions(stats)
    assert sorted(distributions) == ["bytes_per_value", "tokens_per_value"]
    assert sum(b.sample_count for b in distributions["tokens_per_value"].buckets) == pytest.approx(600)
    html = (ingested / "stats.html").read_text()
    assert "Text features" in html
    assert "tokens per value" in html
    assert "most frequent tokens" in html


def test_engines_agree_on_text(corpus, ingested):
    source, folder = corpus
    cfg = IngestConfig(source=str(source), label="sentiment", key="review_id", batch_rows=64, engine="beam")
    run(cfg, str(folder / "beam"), THREADS)
    for name in ("schema.json", "stats.json"):
        assert_close(json.loads((ingested / name).read_text()), json.loads((folder / "beam" / name).read_text()),
                     name)
    assert (folder / "beam" / "schema.pbtxt").read_text() == (ingested / "schema.pbtxt").read_text()


def test_text_statistics_merged_in_any_order_equal_one_pass():
    """Beam's accumulators for text (a tenth of the values missing): lengths, token counts and tokens."""
    rng = np.random.default_rng(3)
    texts = [row[3] for row in reviews.rows(500)]
    batches = [pa.table({"review": pa.array([t.encode() if rng.random() > 0.1 else None
                                             for t in texts[i:i + 100]], pa.binary()),
                         "label": pa.array(rng.choice([b"a", b"b"], 100))}) for i in range(0, 500, 100)]
    splits = [rng.integers(0, 3, 100).astype(np.int8) for _ in batches]
    assert_merged_in_any_order_equal_one_pass({"review": "text", "label": "string"}, batches, splits,
                                              ([3, 0, 4, 2, 1],))


def test_max_text_bytes_must_be_positive():
    from components.common.config import ConfigError

    with pytest.raises(ConfigError, match=r"ingest.max_text_bytes: expected an integer >= 1, got 0"):
        dataclasses.replace(IngestConfig(source="x"), max_text_bytes=0).validate()
