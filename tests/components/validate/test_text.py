"""Text features drift in their tokens (L-infinity, as categories) and in their lengths (Jensen-Shannon)."""

import pytest

from components.common.config import ValidateConfig
from components.data import reviews
from components.validate import run

SETTINGS = {"label": "sentiment", "key": "review_id"}
REVIEW = reviews.HEADER.index("review")


def with_reviews(rows, change):
    return [[change(v) if c == REVIEW else v for c, v in enumerate(row)] for row in rows]


def text_findings(result):
    return {f.statistic: f for f in result.anomalies.findings if f.feature == "review" and f.kind == "drift"}


@pytest.fixture(scope="module")
def text_baseline(ingest):
    return ingest("reviews_base", reviews.HEADER, reviews.rows(800, seed=1), **SETTINGS)


def test_another_sample_of_the_same_reviews_passes(ingest, text_baseline, tmp_path):
    new = ingest("reviews_same", reviews.HEADER, reviews.rows(800, seed=2), **SETTINGS)
    result = run(ValidateConfig(), new, text_baseline, str(tmp_path / "out"))
    drift = text_findings(result)
    assert sorted(drift) == ["jensen_shannon_divergence_bytes_per_value", "jensen_shannon_divergence_tokens_per_value",
                             "l_infinity"]
    assert all(f.verdict == "pass" for f in drift.values())
    assert result.validated


def test_longer_reviews_drift_in_length_and_other_words_in_tokens(ingest, text_baseline, tmp_path):
    longer = ingest("reviews_longer", reviews.HEADER,
                    with_reviews(reviews.rows(800, seed=2), lambda text: f"{text} {text} {text}"), **SETTINGS)
    drift = text_findings(run(ValidateConfig(), longer, text_baseline, str(tmp_path / "longer")))
    assert drift["jensen_shannon_divergence_tokens_per_value"].verdict == "fail"
    assert drift["jensen_shannon_divergence_bytes_per_value"].verdict == "fail"
    assert "review: Jensen-Shannon divergence" in drift["jensen_shannon_divergence_tokens_per_value"].message
    assert drift["l_infinity"].verdict == "pass"  # the same words, as often as before
    report = (tmp_path / "longer" / "report.html").read_text()
    assert "review bytes per value (baseline" in report
    assert "review tokens per value (baseline" in report

    padded = ingest("reviews_words", reviews.HEADER,
                     with_reviews(reviews.rows(800, seed=2), lambda text: "meh " * 3 + text),
                     **SETTINGS)
    drift = text_findings(run(ValidateConfig(), padded, text_baseline, str(tmp_path / "words")))
    assert drift["l_infinity"].verdict == "fail"
    assert "largest for 'meh'" in drift["l_infinity"].message
