"""Images on the What-If page, in headless chromium: thumbnails, saliency, painting over a digit, uploads."""

import json
import urllib.request

import numpy as np
import pytest
from PIL import Image

from components.whatif import page

pytestmark = pytest.mark.browser


def predicted(url: str, version: int, pixel: int) -> str:
    """The class the version's model gives an 8x8 image of one grey level, asked through the page's REST path."""
    body = json.dumps({"instances": [{"image": [[[pixel]] * 8] * 8}]}).encode()
    request = urllib.request.Request(f"{url.split('?')[0]}v1/models/digits/versions/{version}:predict", data=body)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["predictions"][0]["classes"])


def test_paint_over_a_digit_until_its_prediction_flips_and_upload_images(browser, tmp_path, two_digits,
                                                                          digits_examples):
    with page.running(str(two_digits), digits_examples, compare="1") as url:
        blank = predicted(url, 2, 0)
        tab = browser.new_page(viewport={"width": 1500, "height": 1000})
        tab.goto(url)
        tab.wait_for_selector("#examples tbody tr")
        rows = tab.locator("#examples tbody tr")
        assert tab.locator("#examples tbody img.thumb").count() == rows.count() > 100
        assert tab.locator("#examples thead th").all_inner_texts()[1:3] == ["image", "label"]
        candidate_column = rows.first.locator("td").all_inner_texts()
        assert len(candidate_column) == 7  # #, image, label, and each model's class and confidence
        answers = [row.locator("td").nth(3).inner_text().rstrip(" ✗") for row in rows.all()]
        chosen = next(i for i, answer in enumerate(answers) if answer != blank)
        rows.nth(chosen).click()
        tab.wait_for_selector("#prediction:not(.stale) #predicted-class-baseline")
        tab.wait_for_selector("#saliency-map")
        assert tab.inner_text("#predicted-class") == answers[chosen]
        assert "largest drop" in tab.inner_text("#saliency")

        tab.select_option("#tool", "0")  # paints black: the digits' background
        tab.fill("#brush", "8")
        canvas = tab.locator("#editor canvas").bounding_box()
        tab.mouse.move(canvas["x"] + 2, canvas["y"] + 2)
        tab.mouse.down()
        tab.mouse.move(canvas["x"] + 6, canvas["y"] + 6)
        tab.mouse.up()
        tab.wait_for_selector(f"#prediction:not(.stale) #predicted-class:text-is('{blank}')")
        assert blank != answers[chosen], "the occlusion did not flip the prediction"
        tab.locator("#editor canvas").screenshot(path=str(tmp_path / "occluded.png"))
        occluded = np.asarray(Image.open(tmp_path / "occluded.png").convert("L"))
        assert occluded.shape[0] >= 200
        assert np.median(occluded) < 10, "the digit is still on the canvas"
        tab.screenshot(path=str(tmp_path / "flipped.png"), full_page=True)
        assert Image.open(tmp_path / "flipped.png").size[0] == 1500

        Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(tmp_path / "big.png")
        tab.set_input_files("#upload", str(tmp_path / "big.png"))
        tab.wait_for_selector("#upload-error:has-text('16×16 pixels; the model reads 8×8')")
        (tmp_path / "notes.png").write_text("not a picture")
        tab.set_input_files("#upload", str(tmp_path / "notes.png"))
        tab.wait_for_selector("#upload-error:has-text('that file is not an image')")
        Image.fromarray(np.full((8, 8), 255, np.uint8), "L").save(tmp_path / "white.png")
        tab.set_input_files("#upload", str(tmp_path / "white.png"))
        white = predicted(url, 2, 255), predicted(url, 1, 255)
        tab.wait_for_selector(f"#prediction:not(.stale) #predicted-class:text-is('{white[0]}')")
        assert tab.inner_text("#predicted-class-baseline") == white[1]
        assert tab.inner_text("#upload-error") == ""
