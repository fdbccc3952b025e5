import pytest

from components.common.config import IngestConfig
from components.data import write_digits, write_penguins
from components.ingest import run


@pytest.fixture(scope="session")
def digits_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    run(IngestConfig(source=str(write_digits(root / "png"))), str(root / "examples"))
    return str(root / "examples")


@pytest.fixture(scope="session")
def penguins_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("penguins")
    run(IngestConfig(source=str(write_penguins(root / "penguins.csv")), label="species"), str(root / "examples"))
    return str(root / "examples")
