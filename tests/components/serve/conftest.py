"""A running server on free 127.0.0.1 ports (the exported models are in tests/components/conftest.py)."""

import shutil

import pytest

from components.common.config import BatchingConfig, ServeConfig
from components.serve.models import SCHEMA
from components.serve.server import running


def config(home, **changes) -> ServeConfig:
    return ServeConfig(**{"model_base": str(home), "rest_port": 0, "grpc_port": 0, "poll_seconds": 0.2, **changes})


@pytest.fixture(scope="session")
def bare_penguins_home(tmp_path_factory, penguins_home):
    """Version 1 without the schema export writes beside it, as another tool would export it: no input has a
    missing-value default, so a null or a left-out input is refused."""
    home = tmp_path_factory.mktemp("bare") / "penguins"
    shutil.copytree(penguins_home / "1", home / "1")
    (home / "1" / SCHEMA).unlink()
    return home


@pytest.fixture(scope="module")
def penguins_server(bare_penguins_home):
    with running(config(bare_penguins_home, batching=BatchingConfig(enabled=True))) as server:
        yield server


def copy_version(home, version, into, as_version):
    shutil.copytree(home / str(version), into / str(as_version))
