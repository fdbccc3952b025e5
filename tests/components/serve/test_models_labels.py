"""Labels on a real server: the registry's labels file followed with no setting, every labelled version loaded
whatever the policy, and a label moved to a version that cannot be served kept where it was."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.common.registry import Registry
from components.serve import announce
from components.serve.client import GrpcClient, RestClient, ServeError
from components.serve.server import running
from tests.components.registry.conftest import blessed
from tests.components.registry.test_serving import answer, save_scaler, until
from tests.components.serve.conftest import config
from tests.conftest import ROOT

TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def scalers(tmp_path_factory) -> Path:
    """Versions 1 and 2 of y = 10 * version * x, saved once; each test copies them."""
    folder = tmp_path_factory.mktemp("scalers")
    for version in (1, 2):
        save_scaler(folder / str(version), float(version * 10))
    return folder


def model_home(scalers: Path, into: Path, *versions: int) -> Path:
    home = into / "serving" / "scaler"
    for version in versions:
        shutil.copytree(scalers / str(version), home / str(version))
    return home


def rest_states(client: RestClient) -> dict[str, tuple[str, str]]:
    return {s["version"]: (s["state"], s["status"]["error_message"])
            for s in client.status()["model_version_status"]}


def test_a_label_moved_to_a_version_that_cannot_be_served_stays_where_it_was(tmp_path, scalers):
    home = model_home(scalers, tmp_path, 1)
    labels = tmp_path / "labels.yaml"
    labels.write_text("production: 1\n")
    with running(config(home, labels_file=str(labels))) as server:
        client = RestClient(server.rest_url, "scaler")
        assert answer(client, "production") == ("1", 10.0)
        labels.write_text('{"production": 9, "canary": 7}')  # neither version is on disk
        until(lambda: server.manager.refused.keys() == {"production", "canary"})
        assert server.manager.labels == {"production": 1}
        assert server.manager.servables.keys() == {1}
        assert answer(client, "production") == ("1", 10.0)
        grpc = GrpcClient(server.grpc_target, "scaler")
        assert grpc.predict({"x": np.array([1.0], np.float32)}, label="production")["y"].tolist() == [10.0]
        with pytest.raises(ServeError, match="NOT_FOUND: .*label 'canary' names version 7"):
            grpc.predict({"x": np.array([1.0], np.float32)}, label="canary")
        grpc.close()
        states = rest_states(client)
        assert states["1"] == ("AVAILABLE", "")
        assert states["9"] == ("END", "label 'production' names version 9, which is not available (not on disk); "
                                      "it stays at version 1")
        with pytest.raises(ServeError, match="label 'canary' names version 7, which is not available \\(not on "
                                              "disk\\); it is not served"):
            client.status(label="canary")

        shutil.copytree(scalers / "2", home / "9")  # the version arrives
        until(lambda: server.manager.labels == {"production": 9})
        assert answer(client, "production") == ("9", 20.0)
        assert rest_states(client)["9"] == ("AVAILABLE", "")
        assert server.manager.refused.keys() == {"canary"}
        labels.write_text("production: 9\n")
        until(lambda: not server.manager.refused)
        assert "7" not in rest_states(client)


def test_every_labelled_version_is_loaded_whatever_the_policy(tmp_path, scalers):
    home = model_home(scalers, tmp_path, 1, 2)
    labels = tmp_path / "labels.json"
    labels.write_text('{"production": 2}')
    with running(config(home, labels_file=str(labels), version_policy="specific", versions=(1,))) as server:
        client = RestClient(server.rest_url, "scaler")
        assert server.manager.servables.keys() == {1, 2}
        assert answer(client, "production") == ("2", 20.0)
        labels.write_text('{"production": 1}')
        until(lambda: server.manager.servables.keys() == {1})


def test_tfpipe_serve_follows_the_registrys_labels_with_no_setting(tmp_path, scalers):
    home = model_home(scalers, tmp_path, 1, 2)
    registry = Registry(str(home))
    for version in (1, 2):
        registry.register(version, blessed(0.9))
    server = subprocess.Popen([TFPIPE, "serve", "--model-base", str(home), "--rest-port", "0", "--grpc-port", "0",
                               "--set", "serve.poll_seconds=0.2", "--set", "serve.shutdown_delay_seconds=0"],
                              cwd=ROOT, env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        listening = announce.wait_for(server, 120, lines)
        assert listening is not None, "".join(lines)
        client = RestClient(listening.rest_url, "scaler")
        with pytest.raises(ServeError, match="label 'production' of model 'scaler' not found"):
            client.status(label="production")  # no alias yet: the registry has no labels file

        for command, expected in ((["promote", "--version", "1"], ("1", 10.0)),  # not the newest: loaded for it
                                  (["promote", "--version", "2"], ("2", 20.0)),
                                  (["rollback"], ("1", 10.0))):
            done = subprocess.run([TFPIPE, "models", *command, "--base", str(home)], cwd=ROOT, env=ENV,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            until(lambda expected=expected: _answers(client, "production") == expected, seconds=60)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert json.loads((home / "labels.json").read_text()) == {"production": 1}


def _answers(client: RestClient, label: str) -> tuple[str, float] | None:
    try:
        return answer(client, label)
    except ServeError:
        return None
