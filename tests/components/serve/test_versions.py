"""Versions that fail to load: the serving one stays, the failure is reported and retried when its folder
changes; a server that cannot start says why in one line."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from components.serve.client import GrpcClient, RestClient
from components.serve.server import StartError, running
from tests.components.serve.conftest import config, copy_version
from tests.components.serve.test_rest import VALID


def half_copied(home, version, into, as_version):
    """`version` as an interrupted `cp -r` leaves it: every file there, the variables' data cut in half."""
    copy_version(home, version, into, as_version)
    for data in (into / str(as_version) / "variables").glob("variables.data-*"):
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def finish_copy(home, version, into, as_version):
    for data in (home / str(version) / "variables").glob("variables.data-*"):
        shutil.copyfile(data, into / str(as_version) / "variables" / data.name)


def wait_until(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def rest_states(client) -> dict[str, tuple[str, str]]:
    return {s["version"]: (s["state"], s["status"]["error_message"])
            for s in client.status()["model_version_status"]}


def test_a_version_that_fails_to_load_leaves_the_serving_one_and_loads_once_complete(tmp_path, penguins_home,
                                                                                      caplog):
    base = tmp_path / "penguins"
    copy_version(penguins_home, 1, base, 1)
    with running(config(base)) as server:
        client = RestClient(server.rest_url, "penguins")
        half_copied(penguins_home, 1, base, 2)
        wait_until(lambda: server.manager.states.get(2) is not None and server.manager.states[2].error)
        state, error = rest_states(client)["2"]
        assert state == "END"
        assert error.startswith("failed to load:")
        assert rest_states(client)["1"] == ("AVAILABLE", "")
        assert client.predict(instances=[VALID])["predictions"][0]["classes"]  # still answered, by version 1
        assert client.request("GET", "/readyz") == {"ready": True}
        grpc = GrpcClient(server.grpc_target, "penguins")
        failed = {s.version: s for s in grpc.status().model_version_status}[2]
        assert failed.status.error_code == 2
        assert failed.status.error_message == error
        grpc.close()
        polled = server.manager.polls
        wait_until(lambda: server.manager.polls >= polled + 3)  # polls go by; the same folder is not tried again
        assert server.manager.servables.keys() == {1}
        assert rest_states(client)["2"] == ("END", error)
        assert [r.getMessage() for r in caplog.records if "version 2 failed to load" in r.getMessage()] == \
            [f"serve: penguins version 2 {error} (attempt 1; tried again when its folder changes, not before 0.2 s)"]
        finish_copy(penguins_home, 1, base, 2)
        wait_until(lambda: server.manager.servables.keys() == {2})
        assert rest_states(client) == {"1": ("END", ""), "2": ("AVAILABLE", "")}
        assert client.predict(instances=[VALID], version=2)["predictions"][0]["classes"]
        client.close()


def test_removing_a_broken_version_keeps_serving(tmp_path, penguins_home):
    base = tmp_path / "penguins"
    copy_version(penguins_home, 1, base, 1)
    with running(config(base)) as server:
        half_copied(penguins_home, 1, base, 2)
        wait_until(lambda: 2 in server.manager.states and server.manager.states[2].error)
        shutil.rmtree(base / "2")
        wait_until(lambda: 2 not in server.manager.states)
        client = RestClient(server.rest_url, "penguins")
        assert rest_states(client) == {"1": ("AVAILABLE", "")}
        assert client.predict(instances=[VALID])["predictions"][0]["classes"]
        client.close()


def test_the_server_starts_on_the_newest_version_that_loads(tmp_path, penguins_home):
    base = tmp_path / "penguins"
    copy_version(penguins_home, 1, base, 1)
    half_copied(penguins_home, 1, base, 2)
    with running(config(base)) as server:
        assert server.manager.servables.keys() == {1}
        assert server.listening().versions == (1,)
        client = RestClient(server.rest_url, "penguins")
        assert client.request("GET", "/readyz") == {"ready": True}
        assert rest_states(client)["2"][0] == "END"
        client.close()


def test_a_port_in_use_is_a_start_error(penguins_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StartError, match=f"REST port 127.0.0.1:{port}: .*in use"), \
                running(config(penguins_home, rest_port=port)):
            pass
    with running(config(penguins_home)) as server:
        with pytest.raises(StartError, match=f"gRPC port 127.0.0.1:{server.grpc_port}: cannot bind"), \
                running(config(penguins_home, grpc_port=server.grpc_port)):
            pass


def test_a_model_base_that_does_not_exist_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "components", "serve", "--model-base", str(tmp_path / "nowhere"),
                           "--rest-port", "0", "--grpc-port", "0"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line == f"error: serve.model_base {tmp_path / 'nowhere'}: no such folder; expected the model's folder " \
                   "of numbered versions (<base>/<name>)"


def test_the_latest_policy_also_serves_the_versions_labels_name(tmp_path, penguins_home):
    base = tmp_path / "penguins"
    copy_version(penguins_home, 1, base, 1)
    copy_version(penguins_home, 1, base, 2)
    labels = tmp_path / "labels.json"
    labels.write_text('{"production": 1}')
    with running(config(base, labels_file=str(labels))) as server:
        client = RestClient(server.rest_url, "penguins")
        wait_until(lambda: server.manager.servables.keys() == {1, 2})
        assert client.status(label="production")["model_version_status"][0]["version"] == "1"
        assert client.predict(instances=[VALID], label="production")["predictions"][0]["classes"]
        labels.write_text('{"production": 2}')  # a promotion: version 1 is neither the newest nor labelled now
        wait_until(lambda: server.manager.servables.keys() == {2})
