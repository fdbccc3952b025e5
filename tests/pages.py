"""The report pages tfpipe writes, read as a person reads them: the verdict, the sections and their tables,
checked against the machine-readable documents written beside them."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from components.whatif.document import WhatIfDocument


class _Tables(HTMLParser):
    """Each table's rows (cells as text, the header row first) under the <h2> heading it follows."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, list[list[list[str]]]] = {}
        self.heading = ""
        self.text = ""
        self.row: list[str] = []
        self.table: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "td", "th"):
            self.text = ""
        elif tag == "tr":
            self.row = []
        elif tag == "table":
            self.table = []

    def handle_data(self, data):
        self.text += data

    def handle_endtag(self, tag):
        if tag == "h2":
            self.heading = self.text.strip()
        elif tag in ("td", "th"):
            self.row.append(self.text.strip())
        elif tag == "tr":
            self.table.append(self.row)
        elif tag == "table":
            self.sections.setdefault(self.heading, []).append(self.table)


def tables(page: str) -> dict[str, list[dict[str, str]]]:
    """The first table of each section, as rows keyed by the table's header."""
    parser = _Tables()
    parser.feed(page)
    return {heading: [dict(zip(found[0][0], row)) for row in found[0][1:]]
            for heading, found in parser.sections.items()}


def shown(value) -> str:
    """A number as the pages show it (4 significant digits), anything else as text."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def assert_evaluation_report_shows(folder: Path, verdict: str) -> dict:
    """report.html in an evaluate output folder: the verdict, every number of metrics.json's overall metrics
    and every slice (feature, slice, count), as metrics.json holds them. Returns its sections' tables."""
    page = (folder / "report.html").read_text()
    document = json.loads((folder / "metrics.json").read_text())
    assert re.findall(r"<h2 id='verdict' class='\w+'>([A-Z ]+)</h2>", page) == [verdict]
    shown_tables = tables(page)
    numbers = {k: v for k, v in document["overall"].items() if isinstance(v, (int, float))}
    assert {r["metric"]: r["value"] for r in shown_tables["Metrics"]} == {k: shown(v) for k, v in numbers.items()}
    assert [(r["feature"], r["slice"], r["count"]) for r in shown_tables["Slices"]] == [
        (s["feature"], s["slice"], str(s["count"])) for s in document["slices"]]
    return shown_tables


def assert_whatif_report_shows(folder: Path) -> WhatIfDocument:
    """report.html in a whatif output folder: the test examples counted, every slice and class of whatif.json
    with its count, and one plot per partial dependence. Returns the document."""
    page = (folder / "report.html").read_text()
    document = WhatIfDocument.read(str(folder))
    assert f"<p>{document.count:,} test examples. " in page
    assert [(r["feature"], r["slice"], r["count"]) for r in tables(page)["Performance by slice"]] == [
        (r.feature, r.slice, str(r.count)) for r in document.slices + document.per_class]
    partial = page.split("<h2>Partial dependence</h2>", 1)[1].split("<h2>", 1)[0]
    assert partial.count("<svg") == len(document.partial_dependence) > 0
    return document
