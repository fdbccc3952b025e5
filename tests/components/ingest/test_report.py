"""stats.html shows each numeric column's real shape, with axes, and never a blank label."""

import json
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa

from components.common.config import IngestConfig
from components.ingest import run
from components.ingest.stats import NumericStats
from tests.conftest import write_csv


class Histograms(HTMLParser):
    """The bars (x, width, height) and texts of each histogram <svg>, by its aria-label; the value bars' labels."""

    def __init__(self, html: str):
        super().__init__()
        self.bars: dict[str, list[tuple[float, float, float]]] = {}
        self.texts: dict[str, list[str]] = {}
        self.bar_labels: list[str] = []
        self._svg = ""
        self._in_text = self._in_div = self._in_small = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("aria-label", "").startswith("histogram of "):
            self._svg = a["aria-label"].removeprefix("histogram of ")
            self.bars[self._svg], self.texts[self._svg] = [], []
        elif tag == "rect" and self._svg:
            self.bars[self._svg].append((float(a["x"]), float(a["width"]), float(a["height"])))
        self._in_text = tag == "text" and bool(self._svg)
        self._in_div = self._in_div or tag == "div"
        self._in_small = tag == "small"

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = ""
        self._in_text = self._in_small = False
        self._in_div = self._in_div and tag != "div"

    def handle_data(self, data):
        if self._in_text:
            self.texts[self._svg].append(data)
        elif self._in_div and not self._in_small:
            self.bar_labels.append(data.strip())


def test_equal_width_counts_are_exact_as_the_range_grows():
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, 1, 500), rng.normal(-40, 5, 300), rng.normal(90, 20, 700)]
    stats = NumericStats()
    for values in batches:
        stats.update(pa.array(values, pa.float64()))
    bins = stats.to_dict()["equal_width"]
    edges = np.array(bins["edges"])
    everything = np.concatenate(batches)
    assert np.allclose(np.diff(edges), edges[1] - edges[0])
    assert edges[0] <= everything.min()
    assert everything.max() < edges[-1]
    assert bins["counts"] == np.histogram(everything, edges)[0].tolist()


def test_int_bins_hold_whole_values():
    stats = NumericStats(integer=True)
    stats.update(pa.array([0, 1, 1, 2, 2, 2, 3], pa.int64()))
    stats.update(pa.array([40, 7], pa.int64()))
    bins = stats.to_dict()["equal_width"]
    edges = np.array(bins["edges"])
    assert np.all(edges % 1 == 0.5)
    assert np.all(np.diff(edges) == edges[1] - edges[0])
    assert bins["counts"] == np.histogram([0, 1, 1, 2, 2, 2, 3, 40, 7], edges)[0].tolist()


def test_stats_page_draws_real_shapes_with_axes(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    cities = ["Paris", "Oslo", ""]
    rows = [[i, round(float(rng.exponential(1000)), 2), int(rng.integers(0, 10)), cities[i % 3], i % 2]
            for i in range(n)]
    src = write_csv(tmp_path / "d.csv", ["id", "wait", "digit", "city", "label"], rows)
    out = tmp_path / "out"
    run(IngestConfig(source=str(src), key="id"), str(out))
    page = Histograms((out / "stats.html").read_text())

    wait = page.bars["wait"]
    widths = [w for _, w, _ in wait]
    heights = [h for _, _, h in wait]
    assert max(widths) - min(widths) < 0.2, "bins of equal width are drawn equally wide"
    assert heights[0] == max(heights), "an exponential falls off"
    assert heights[-1] < heights[0] / 20, "an exponential falls off"
    assert "rows" in page.texts["wait"]
    assert "wait" in page.texts["wait"]
    assert page.texts["wait"][-1] != "0", "the row axis is numbered up to the tallest bar"

    digit = page.bars["digit"]
    assert len(digit) == 10
    assert max(h for *_, h in digit) < 1.5 * min(h for *_, h in digit)
    assert {"0", "9"} <= set(page.texts["digit"])

    city = json.loads((out / "stats.json").read_text())["columns"]["city"]
    assert city["missing"] == n // 3
    assert "(missing)" in page.bar_labels
    assert "" not in page.bar_labels
