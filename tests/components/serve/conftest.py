"""A running server on free 127.0.0.1 ports (the exported models are in tests/components/conftest.py)."""

import shutil

import pytest

from components.common.config import BatchingConfig, ServeConfig
from components.serve.server import running


def config(home, **changes) -> ServeConfig:
    return ServeConfig(**{"model_base": str(home), "rest_port": 0, "grpc_port": 0, "poll_seconds": 0.2, **changes})


@pytest.fixture(scope="module")
def penguins_server(penguins_home):
    with running(config(penguins_home, batching=BatchingConfig(enabled=True))) as server:
        yield server


def copy_version(home, version, into, as_version):
    shutil.copytree(home / str(version), into / str(as_version))
