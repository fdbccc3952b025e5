"""What-If on a model that reads text: shown and edited as text, never swept, never sliced."""

import pytest

from components.common.config import EvaluateConfig, WhatIfConfig
from components.whatif import page, run
from components.whatif.document import WhatIfError


def test_the_report_sweeps_and_slices_the_numbers_and_categories_and_reads_the_texts(tmp_path, reviews_model,
                                                                                   reviews_examples):
    document = run(WhatIfConfig(grid_points=4, ice_examples=3), reviews_model, reviews_examples,
                   str(tmp_path / "w"), EvaluateConfig()).document
    assert {pd.feature for pd in document.partial_dependence} == {"review_id", "product", "helpful_votes"}
    assert "review" not in {s.feature for s in document.slices}
    assert document.slices
    assert document.overall["accuracy"] > 0.8
    assert document.thresholds is not None
    assert "Partial dependence" in (tmp_path / "w" / "report.html").read_text()
    with pytest.raises(WhatIfError, match=r"whatif.features: \['review'\] are text or lists; partial dependence "
                                          r"sweeps"):
        run(WhatIfConfig(features=("review",)), reviews_model, reviews_examples, str(tmp_path / "no"),
            EvaluateConfig())
    assert not (tmp_path / "no").exists()


def test_the_editor_knows_a_text_from_a_category(reviews_examples):
    document = page.examples_document(reviews_examples, "reviews")
    features = {f.name: f for f in document.features}
    assert features["review"].text
    assert not features["review"].vocabulary
    assert not features["review"].numeric
    assert not features["product"].text
    assert "lamp" in features["product"].vocabulary
    assert all(len(row["review"].split()) > 3 for row in document.rows)


@pytest.mark.browser
def test_a_text_is_edited_in_a_text_area_and_its_words_move_the_prediction(browser, reviews_home, reviews_examples):
    with page.running(str(reviews_home), reviews_examples) as url:
        tab = browser.new_page()
        tab.goto(url)
        tab.click("#examples tbody tr >> nth=0")
        tab.wait_for_selector("#predicted-class")
        assert tab.locator("select[name=review]").count() == 0
        assert "review" not in tab.locator("#pd-feature option").all_inner_texts()
        for words, sentiment in (("Terrible, it broke! Returned for a refund.", "negative"),
                                 ("Great kettle, I love it. Sturdy and quiet!", "positive")):
            tab.fill("textarea[name=review]", words)
            tab.dispatch_event("#editor", "change")
            tab.wait_for_selector("#prediction:not(.stale)")
            assert tab.inner_text("#predicted-class") == sentiment


@pytest.mark.browser
def test_a_list_is_edited_as_values_separated_by_commas(browser, reviews_home, reviews_examples):
    document = page.examples_document(reviews_examples, "reviews")
    features = {f.name: f for f in document.features}
    assert (features["tags"].list, features["past_ratings"].list) == ("string", "int")
    assert all(isinstance(row["tags"], list) for row in document.rows)
    with page.running(str(reviews_home), reviews_examples) as url:
        tab = browser.new_page()
        tab.goto(url)
        tab.click("#examples tbody tr >> nth=0")
        tab.wait_for_selector("#predicted-class")
        assert not {"tags", "past_ratings"} & set(tab.locator("#pd-feature option").all_inner_texts())
        tab.fill("input[name=tags]", "gift, repeat_buyer")
        tab.fill("input[name=past_ratings]", "5, 4, 5")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_selector("#prediction:not(.stale)")
        assert tab.locator("#prediction-error").count() == 0
        tab.fill("input[name=past_ratings]", "5, many")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_selector("#prediction-error")
        assert "past_ratings" in tab.inner_text("#prediction-error")
