"""The interactive What-If page in a real headless browser (Debian's chromium driven by Playwright)."""

import pytest

from components.whatif import page

pytestmark = pytest.mark.browser


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
        # A long, shallow bill and a heavy bird from Biscoe: what the model has learnt Gentoo looks like.
        for name, value in (("bill_length_mm", "49"), ("bill_depth_mm", "14"), ("flipper_length_mm", "225"),
                            ("body_mass_g", "5600")):
            tab.fill(f"input[name={name}]", value)
        tab.select_option("select[name=island]", "Biscoe")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_selector("#prediction:not(.stale)")  # the answer to the last edit, not an earlier one
        assert tab.inner_text("#predicted-class") == "Gentoo"
        tab.click("#counterfactual-button")
        tab.wait_for_selector("#counterfactual-table")
        assert tab.locator("#counterfactual-table tr.differs").count() >= 2
        tab.select_option("#pd-feature", "flipper_length_mm")
        tab.wait_for_selector("#pd svg text:text-is('flipper_length_mm')")
        for name in ("Adelie", "Chinstrap", "Gentoo"):  # one line per class, named in the legend
            assert tab.locator("#pd #legend text", has_text=name).count() == 1
        tab.screenshot(path=str(tmp_path / "whatif.png"), full_page=True)
    assert (tmp_path / "whatif.png").stat().st_size > 10_000

