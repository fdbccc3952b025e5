"""The page tests launch chromium the way the report screenshots do; a registry of two penguins versions."""

import pytest

from components.common.config import ExportConfig
from components.export import run as export
from tests.reports.conftest import browser  # noqa: F401


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, penguins_model, other_penguins_model, penguins_examples):
    """`<base>/penguins`: version 1 the noisy model (production), version 2 the trained one (the newest)."""
    home = tmp_path_factory.mktemp("serving") / "penguins"
    for model in (other_penguins_model, penguins_model):
        export(ExportConfig(model_name="penguins"), model, penguins_examples, str(home))
    return home
