"""A list feature drifts in its values (as its type's values do) and in its length (values per row)."""

from components.common.config import ValidateConfig
from components.data import reviews
from components.validate import run

SETTINGS = {"label": "sentiment", "key": "review_id", "list_delimiter": reviews.LIST_DELIMITER}
TAGS, RATINGS = reviews.HEADER.index("tags"), reviews.HEADER.index("past_ratings")


def changed(rows, column: int, change):
    return [[change(v) if c == column else v for c, v in enumerate(row)] for row in rows]


def findings(result, feature: str):
    return {f.statistic: f for f in result.anomalies.findings if f.feature == feature and f.kind == "drift"}


def test_lists_pass_alike_and_drift_in_length_or_in_values(ingest, tmp_path):
    base = ingest("lists_base", reviews.HEADER, reviews.rows(800, seed=1), **SETTINGS)
    same = findings(run(ValidateConfig(), ingest("lists_same", reviews.HEADER, reviews.rows(800, seed=2), **SETTINGS),
                        base, str(tmp_path / "same")), "tags")
    assert sorted(same) == ["jensen_shannon_divergence_values_per_row", "l_infinity"]
    assert all(f.verdict == "pass" for f in same.values())

    # Every reviewer has rated three times more often: the ratings' values are as before, their count is not.
    longer = ingest("lists_longer", reviews.HEADER,
                    changed(reviews.rows(800, seed=2), RATINGS, lambda v: "|".join([v] * 3) if v else "4|4|4"),
                    **SETTINGS)
    ratings = findings(run(ValidateConfig(), longer, base, str(tmp_path / "longer")), "past_ratings")
    assert ratings["jensen_shannon_divergence_values_per_row"].verdict == "fail"
    assert "past_ratings: Jensen-Shannon divergence" in ratings["jensen_shannon_divergence_values_per_row"].message
    assert "values per row" in ratings["jensen_shannon_divergence_values_per_row"].message

    # Every order is a gift: the tags' values drift as categories do.
    gifts = ingest("lists_gifts", reviews.HEADER, changed(reviews.rows(800, seed=2), TAGS, lambda v: "gift"),
                   **SETTINGS)
    tags = findings(run(ValidateConfig(), gifts, base, str(tmp_path / "gifts")), "tags")
    assert tags["l_infinity"].verdict == "fail"
    assert "values per row" in (tmp_path / "longer" / "report.html").read_text()
