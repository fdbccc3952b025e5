"""The page tests launch chromium the way the report screenshots do; registries of two versions each."""

import pytest

from components.common.config import ExportConfig
from components.export import run as export
from tests.components.conftest import with_noise
from tests.reports.conftest import browser  # noqa: F401


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, penguins_model, other_penguins_model, penguins_examples):
    """`<base>/penguins`: version 1 the noisy model (production), version 2 the trained one (the newest)."""
    home = tmp_path_factory.mktemp("serving") / "penguins"
    for model in (other_penguins_model, penguins_model):
        export(ExportConfig(model_name="penguins"), model, penguins_examples, str(home))
    return home


@pytest.fixture(scope="module")
def two_digits(tmp_path_factory, digits_model, digits_examples):
    """`<base>/digits`: version 1 the digits CNN with noise on its weights, version 2 the CNN itself."""
    home = tmp_path_factory.mktemp("serving") / "digits"
    for trained in (with_noise(tmp_path_factory, digits_model, 0.1), digits_model):
        export(ExportConfig(model_name="digits"), trained, digits_examples, str(home))
    return home
