"""The What-If page comparing the candidate with production, in headless chromium, and its guarded promotion."""

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from components.common.errors import TfpipeError
from components.common.registry import PRODUCTION, Registry, RegistryError
from components.whatif import page
from components.whatif.document import WhatIfError
from components.whatif.guard import TOKEN_HEADER
from tests.pipelines.test_cli import ENV, TFPIPE


def post(url: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_promotion_needs_the_token_and_the_pages_own_origin(two_versions, penguins_examples):
    registry = Registry(str(two_versions))
    registry.promote(1, PRODUCTION)
    with page.running(str(two_versions), penguins_examples, compare="1") as url:
        base, token = url.split("?token=")
        promote = f"{base}api/promote"
        own = base.rstrip("/")
        status, body = post(promote, {"Origin": own})
        assert status == 403
        assert f"lacks the page's token ({TOKEN_HEADER})" in body["error"]
        status, body = post(promote, {TOKEN_HEADER: "guessed", "Origin": own})
        assert status == 403
        status, body = post(promote, {TOKEN_HEADER: token, "Origin": "http://evil.example"})
        assert (status, body["error"]) == (403, f"a request from another origin (http://evil.example) may not "
                                                f"promote; open the page at {own}")
        status, body = post(promote, {TOKEN_HEADER: token, "Sec-Fetch-Site": "cross-site"})
        assert status == 403
        assert registry.resolve(PRODUCTION) == 1, "a refused request changed the registry"
        status, body = post(promote, {TOKEN_HEADER: token, "Origin": own})
        assert status == 200
        assert body == {"message": f"penguins: production -> version 2 (was 1); labels in {two_versions}/labels.json",
                        "production": 2}
    assert registry.resolve(PRODUCTION) == 2
    registry.promote(1, PRODUCTION)
    with page.running(str(two_versions), penguins_examples, compare="1", read_only=True) as url:
        assert "token" not in url
        status, body = post(f"{url}api/promote", {TOKEN_HEADER: "", "Origin": url.rstrip("/")})
        assert status == 403
        assert body["error"].startswith("this page is read-only")
        with urllib.request.urlopen(f"{url}api/examples", timeout=30) as answer:
            assert json.loads(answer.read())["promote"] is False
    assert registry.resolve(PRODUCTION) == 1


def test_the_command_prints_the_url_that_carries_the_token(two_versions, penguins_examples):
    Registry(str(two_versions)).promote(1, PRODUCTION)
    server = subprocess.Popen([TFPIPE, "whatif", "serve", "--model-base", str(two_versions), "--examples",
                               penguins_examples, "--compare", "production", "--port", "0"],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        found = re.fullmatch(r"What-If page: (http://127\.0\.0\.1:\d+/)\?token=([\w-]{32})  \(Ctrl-C stops it\)\n",
                             line)
        assert found, line
        assert post(f"{found[1]}api/promote", {"Origin": found[1].rstrip("/")})[0] == 403
        assert post(f"{found[1]}api/promote", {TOKEN_HEADER: found[2], "Origin": found[1].rstrip("/")})[0] == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0
    assert Registry(str(two_versions)).resolve(PRODUCTION) == 2


def test_what_cannot_be_compared_is_refused_before_the_page_opens(two_versions, penguins_examples, digits_examples):
    with pytest.raises(RegistryError, match=r"no version 7 of penguins \(registered: 1, 2\)"):
        page.running(str(two_versions), penguins_examples, compare="7").__enter__()
    with pytest.raises(WhatIfError, match=r"--compare 2: that is version 2, the candidate itself"):
        page.running(str(two_versions), penguins_examples, compare="2").__enter__()
    with pytest.raises(TfpipeError, match=r"version 2 \(candidate\): cannot read these examples \(the model cannot "
                                          r"score this input: "):
        with page.running(str(two_versions), digits_examples, compare="1"):
            pass


def orange_rows(path) -> int:
    """Rows of a screenshot with the page's disagreement mark (an orange left border) in them."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    orange = (np.abs(pixels - [0xE0, 0x8A, 0x00]).sum(axis=2) < 40)
    return int(orange.any(axis=1).sum())


@pytest.mark.browser
def test_the_candidate_beside_production_and_promoted_from_the_page(browser, tmp_path, two_versions,
                                                                    penguins_examples):
    Registry(str(two_versions)).promote(1, PRODUCTION)
    with page.running(str(two_versions), penguins_examples, compare=PRODUCTION) as url:
        tab = browser.new_page(viewport={"width": 1600, "height": 900})
        requested = []
        tab.on("request", lambda request: requested.append(request.url))
        tab.goto(url)
        tab.wait_for_selector("#examples tbody tr")
        assert "version 2 (candidate) against production (version 1)" in tab.inner_text("#about")
        headers = tab.locator("#examples thead th").all_inner_texts()
        assert headers[-4:] == ["version 2 (candidate)", "confidence", "production (version 1)", "confidence"]
        total = tab.locator("#examples tbody tr").count()
        disagreeing = tab.locator("#examples tbody tr.disagree").count()
        assert 0 < disagreeing < total
        assert tab.locator("#examples tbody td.wrong").count() >= disagreeing  # the noisy model errs where they differ
        for cell in tab.locator("#examples tbody td.wrong").all():  # a wrong answer is marked, a right one not
            row = cell.locator("xpath=..").locator("td").all_inner_texts()
            assert cell.inner_text().rstrip(" ✗") != row[headers.index("species")]
        tab.screenshot(path=str(tmp_path / "comparison.png"), full_page=True)
        tab.check("#disagree")
        assert tab.locator("#examples tbody tr").count() == disagreeing
        for row in tab.locator("#examples tbody tr").all():
            cells = row.locator("td").all_inner_texts()
            assert cells[-4].rstrip(" ✗") != cells[-2].rstrip(" ✗")
        tab.locator("#list").screenshot(path=str(tmp_path / "disagreements.png"))
        assert orange_rows(tmp_path / "disagreements.png") > 10 * disagreeing  # every listed row is marked
        assert orange_rows(tmp_path / "comparison.png") > 0
        tab.uncheck("#disagree")
        tab.select_option("#slice", label="island = Biscoe")
        islands = tab.locator("#examples tbody tr td:nth-child(2)").all_inner_texts()
        assert set(islands) == {"Biscoe"}
        tab.select_option("#slice", label="every slice")
        tab.click("#examples th[data-sort='0']")
        confidences = [float(t) for t in tab.locator("#examples tbody tr td:nth-last-child(3)").all_inner_texts()]
        assert confidences == sorted(confidences, reverse=True)
        tab.click("#examples th[data-sort='0']")
        confidences = [float(t) for t in tab.locator("#examples tbody tr td:nth-last-child(3)").all_inner_texts()]
        assert confidences == sorted(confidences)

        tab.click("#examples tbody tr >> nth=0")
        tab.wait_for_selector("#prediction:not(.stale) #predicted-class-baseline")
        before = tab.inner_text("#prediction")
        for name, value in (("bill_length_mm", "49"), ("bill_depth_mm", "14"), ("flipper_length_mm", "225"),
                            ("body_mass_g", "5600")):
            tab.fill(f"input[name={name}]", value)
        tab.select_option("select[name=island]", "Biscoe")
        tab.dispatch_event("#editor", "change")
        tab.wait_for_selector("#prediction:not(.stale)")
        assert tab.inner_text("#predicted-class") == "Gentoo"
        after = tab.inner_text("#prediction").split("production (version 1)")[1]
        assert after != before.split("production (version 1)")[1], "the baseline's answer did not change"
        tab.click("#counterfactual-button")
        tab.wait_for_selector("#counterfactual-table-baseline")
        assert tab.locator("#counterfactual-table tr.differs").count() >= 2
        tab.select_option("#pd-feature", "flipper_length_mm")
        tab.wait_for_selector("#pd svg text:text-is('flipper_length_mm')")
        for name in ("Gentoo", "Gentoo (baseline)"):  # both models' curves on one plot
            assert tab.locator("#pd #legend text", has_text=name).count() >= 1

        assert tab.inner_text("#production") == "version 1"
        tab.once("dialog", lambda dialog: dialog.accept())
        tab.click("#promote")
        tab.wait_for_selector("#promoted:has-text('production -> version 2')")
        assert tab.inner_text("#production") == "version 2"
        origin = url.split("?")[0]
        assert [u for u in requested if not u.startswith(origin)] == []  # nothing from anywhere else
        assert f"{origin}api/promote" in requested
    assert Registry(str(two_versions)).resolve(PRODUCTION) == 2
