"""Sources with {SPAN} or {YYYY}-{MM}-{DD}: the newest present, or the day asked for, recorded with the run."""

import json

import pytest

from components.common.config import IngestConfig
from components.ingest import run
from components.ingest.sources import SourceError
from components.ingest.spans import SpanError, resolve
from tests.conftest import people_rows, write_csv


def test_newest_span_and_day(tmp_path):
    for span in (1, 2, 10):
        (tmp_path / f"span-{span}").mkdir()
    (tmp_path / "span-latest").mkdir()  # not a number: ignored
    assert resolve(f"{tmp_path}/span-{{SPAN}}/") == f"{tmp_path}/span-10/"
    for day in ("2026-10-31", "2026-11-25", "2026-11-03"):
        (tmp_path / "events" / day).mkdir(parents=True)
    assert resolve(f"{tmp_path}/events/{{YYYY}}-{{MM}}-{{DD}}/*.csv") == f"{tmp_path}/events/2026-11-25/*.csv"
    assert resolve(f"{tmp_path}/events/{{YYYY}}-{{MM}}-{{DD}}", "2026-10-31") == f"{tmp_path}/events/2026-10-31"
    assert resolve(f"{tmp_path}/plain.csv") == f"{tmp_path}/plain.csv"


def test_bad_templates(tmp_path):
    with pytest.raises(SpanError, match="nothing matches"):
        resolve(f"{tmp_path}/none-{{SPAN}}")
    with pytest.raises(SpanError, match="expected YYYY-MM-DD"):
        resolve(f"{tmp_path}/{{YYYY}}-{{MM}}-{{DD}}", "yesterday")
    with pytest.raises(SpanError, match="one folder or file name"):
        resolve(f"{tmp_path}/{{YYYY}}/{{MM}}-{{DD}}/x.csv")


def test_ingest_records_the_resolved_source(tmp_path):
    header, rows = people_rows(60)
    for span in (3, 4):
        write_csv(tmp_path / "data" / f"span-{span}" / "part.csv", header, rows[: 20 * span])
    source = f"{tmp_path}/data/span-{{SPAN}}/part.csv"
    run(IngestConfig(source=source), str(tmp_path / "out"))
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert schema["source"]["config_source"] == source
    assert schema["source"]["resolved_source"] == f"{tmp_path}/data/span-4/part.csv"
    assert sum(schema["splits"].values()) == 60
    with pytest.raises(SourceError, match="does not exist"):
        run(IngestConfig(source=f"{tmp_path}/data/day-{{YYYY}}-{{MM}}-{{DD}}", source_date="2026-01-01"),
            str(tmp_path / "other"))
