"""Small ingest outputs made with the real ingest step, for validate to compare."""

import pytest

from components.common.config import IngestConfig
from components.ingest import run
from tests.conftest import people_rows, write_csv


@pytest.fixture(scope="session")
def ingest(tmp_path_factory):
    """`ingest(name, header, rows, **settings)`: the rows as a CSV, ingested; returns the output folder."""

    def make(name: str, header: list[str], rows: list[list], **settings) -> str:
        root = tmp_path_factory.mktemp(name)
        source = write_csv(root / f"{name}.csv", header, rows)
        out = root / "examples"
        run(IngestConfig(**{"source": str(source), "label": "label", "key": "id", **settings}), str(out))
        return str(out)

    return make


@pytest.fixture(scope="session")
def baseline(ingest):
    """600 people: the data set every new batch is compared with."""
    return ingest("baseline", *people_rows(600, seed=0))
