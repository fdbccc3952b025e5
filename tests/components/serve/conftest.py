"""Exported models to serve, and a running server on free 127.0.0.1 ports."""

import shutil

import pytest

from components.common.config import BatchingConfig, ExportConfig, ServeConfig
from components.export import run as export
from components.serve.server import running


@pytest.fixture(scope="session")
def penguins_home(tmp_path_factory, penguins_model, penguins_examples):
    """`<base>/penguins` holding version 1 of the penguins classifier."""
    home = tmp_path_factory.mktemp("serving") / "penguins"
    export(ExportConfig(model_name="penguins"), penguins_model, penguins_examples, str(home))
    return home


@pytest.fixture(scope="session")
def digits_home(tmp_path_factory, digits_model, digits_examples):
    home = tmp_path_factory.mktemp("serving") / "digits"
    export(ExportConfig(model_name="digits"), digits_model, digits_examples, str(home))
    return home


def config(home, **changes) -> ServeConfig:
    return ServeConfig(model_base=str(home), rest_port=0, grpc_port=0, poll_seconds=0.2, **changes)


@pytest.fixture(scope="module")
def penguins_server(penguins_home):
    with running(config(penguins_home, batching=BatchingConfig(enabled=True))) as server:
        yield server


def copy_version(home, version, into, as_version):
    shutil.copytree(home / str(version), into / str(as_version))
