"""Every report as a reader sees it: opened in headless chromium, screenshotted, and checked for what keeps it
from misleading (axis labels, legends, colour bars, "(missing)", why a section is empty, the verdict, errors)."""

import json

import pytest

from components.whatif import page

pytestmark = pytest.mark.browser

MISSING = "(missing)"


@pytest.fixture
def tab(browser):
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def look(tab, url: str, screenshots, name: str) -> None:
    """Opens a report and keeps its screenshot."""
    tab.goto(url)
    keep(tab, screenshots, name)


def keep(tab, screenshots, name: str) -> None:
    """A full-page screenshot, kept for people to look at; a blank page makes a tiny file."""
    shot = screenshots / f"{name}.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000, f"{name}: the screenshot looks empty"


def figure_with(tab, words: str):
    """The report's figure that shows `words` (SVG text stays text)."""
    return tab.locator("figure", has=tab.locator("svg text", has_text=words))


def test_evaluate_report_without_thresholds(tab, reports, screenshots):
    look(tab, reports["people"]["evaluate"].as_uri(), screenshots, "evaluate-tabular")
    assert tab.inner_text("#verdict") == "UNCHECKED"
    assert "nothing was checked" in tab.inner_text("body")
    assert "BLESSED" not in tab.inner_text("body")
    slices = tab.locator("h2:text('Slices') + table")
    assert slices.locator(f"td:text-is('{MISSING}')").count() == 1
    assert slices.locator("tr td:nth-child(2):text-is('')").count() == 0, "a slice without a label"
    roc = figure_with(tab, "false positive rate")
    assert roc.locator("svg text", has_text="true positive rate").count()
    assert roc.locator("#legend").count()
    assert figure_with(tab, "test examples").locator("#colour-bar").count(), "the confusion matrix needs a scale"


def test_evaluate_report_of_an_image_model_says_why_it_has_no_slices(tab, reports, screenshots):
    look(tab, reports["noise"]["evaluate"].as_uri(), screenshots, "evaluate-image")
    assert "Not sliced: the model reads only images (image)" in tab.inner_text("h2:text('Slices') + p")


def test_whatif_report_of_a_tabular_model(tab, reports, screenshots):
    look(tab, reports["people"]["whatif"].as_uri(), screenshots, "whatif-tabular")
    for feature in ("age", "income", "city"):
        plot = figure_with(tab, f"partial dependence on {feature}")
        assert plot.locator("svg text", has_text="predicted probability").count(), f"{feature}: no y label"
        assert plot.locator("svg text", has_text=feature).count() >= 2, f"{feature}: no x label"
        assert plot.locator("#legend").count(), f"{feature}: no legend"
    assert figure_with(tab, "partial dependence on city").locator(f"svg text:text-is('{MISSING}')").count()
    assert tab.locator(f"td:text-is('{MISSING}')").count() >= 2  # its slice and its fairness group
    counterfactuals = tab.locator("h2:text('Nearest counterfactuals') ~ table").first
    assert counterfactuals.locator("td.marked").count() >= 2, "the differing values are not highlighted"
    assert counterfactuals.locator("th:text-is('city')").count() == 1  # values by feature, not only indices
    assert figure_with(tab, "decision threshold").locator("#legend").count()


def test_whatif_report_of_an_image_model(tab, reports, screenshots):
    look(tab, reports["noise"]["whatif"].as_uri(), screenshots, "whatif-image")
    saliency = figure_with(tab, "occlusion saliency")
    assert saliency.count() >= 1
    assert saliency.first.locator("#colour-bar").count()
    assert saliency.first.locator("svg text", has_text="when occluded").count()
    text = tab.inner_text("body")
    assert "Partial dependence" in text
    assert "Not computed: the model reads only images (image)" in text
    assert "Threshold analysis is for binary labels" in text


def test_whatif_page(tab, people_home, people_examples, screenshots):
    with page.running(str(people_home), people_examples) as url:
        tab.goto(url)
        missing_row = tab.locator("#examples tbody tr", has=tab.locator(f"td:text-is('{MISSING}')")).first
        missing_row.click()
        tab.wait_for_selector("#predicted-class")
        assert tab.locator("select[name=city] option:checked").inner_text() == MISSING
        tab.wait_for_selector("#pd svg")
        assert tab.locator("#pd svg text", has_text="predicted probability").count()
        assert tab.locator("#pd #legend").count()
        tab.select_option("#pd-feature", "city")
        tab.wait_for_selector(f"#pd svg text:text-is('{MISSING}')")
        tab.click("#counterfactual-button")
        tab.wait_for_selector("#counterfactual-table")
        assert tab.locator("#counterfactual-table tr.differs").count() >= 2  # the prediction and a feature
        assert tab.locator("#counterfactual-table td", has_text="age").count() == 1
        keep(tab, screenshots, "whatif-page")

        # An emptied number is missing: sent as null, never as 0; what comes back replaces the old prediction.
        with tab.expect_request(lambda r: r.url.endswith(":predict")) as sent:
            tab.fill("input[name=age]", "")
            tab.dispatch_event("#editor", "change")
        assert json.loads(sent.value.post_data)["instances"][0]["age"] is None
        tab.wait_for_selector("#prediction:not(.stale)")

        # An answer the page cannot read is an error where the prediction was, not the old prediction.
        tab.route("**/*:predict", lambda route: route.fulfill(status=502, body="<html>Bad gateway</html>"))
        tab.fill("input[name=age]", "40")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_selector("#prediction:not(.stale)")
        assert "not JSON" in tab.inner_text("#prediction-error")
        assert tab.locator("#predicted-class").count() == 0
        tab.wait_for_selector("#pd:not(.stale)")
        keep(tab, screenshots, "whatif-page-error")

