"""The interactive What-If page in a real headless browser (Debian's chromium driven by Playwright)."""

import shutil

import pytest

from components.whatif import page

CHROMIUM = shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("needs chromium (Debian's package; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def test_edit_a_feature_and_see_the_prediction_change(browser, tmp_path, penguins_home, penguins_examples):
    with page.running(str(penguins_home), penguins_examples) as url:
        tab = browser.new_page()
        tab.goto(url)
        tab.wait_for_selector("#examples tbody tr")
        assert "test examples of model \"penguins\"" in tab.inner_text("#about")
        rows = tab.locator("#examples tbody tr").count()
        tab.fill("#filter", "Torgersen")
        assert 0 < tab.locator("#examples tbody tr").count() < rows
        tab.fill("#filter", "")
        tab.click("#examples tbody tr >> nth=0")
        tab.wait_for_selector("#predicted-class")
        before = tab.inner_text("#prediction")
        # A long, shallow bill and a heavy bird from Biscoe: what the model has learnt Gentoo looks like.
        for name, value in (("bill_length_mm", "49"), ("bill_depth_mm", "14"), ("flipper_length_mm", "225"),
                            ("body_mass_g", "5600")):
            tab.fill(f"input[name={name}]", value)
        tab.select_option("select[name=island]", "Biscoe")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_function("b => document.getElementById('prediction').innerText !== b", arg=before)
        assert tab.inner_text("#predicted-class") == "Gentoo"
        tab.click("#counterfactual-button")
        assert "differs in" in tab.inner_text("#counterfactual")
        tab.select_option("#pd-feature", "flipper_length_mm")
        tab.wait_for_selector("#pd svg polyline", state="attached")  # a flat line has no height
        assert tab.locator("#pd svg polyline").count() == 3  # one line per class
        tab.screenshot(path=str(tmp_path / "whatif.png"), full_page=True)
    assert (tmp_path / "whatif.png").stat().st_size > 10_000


def test_image_models_are_sent_to_the_report(digits_examples):
    with pytest.raises(Exception, match="edits tabular features"):
        page.examples_document(digits_examples, "digits")
