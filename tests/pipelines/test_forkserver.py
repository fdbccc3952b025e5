"""The fork server: a step runs in a child of it as it would in its own process, and dies with its caller."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipelines import executor
from pipelines.targets import forkserver
from tests.conftest import ROOT

PROBE = "tests.pipelines.forkserver_probe"


@pytest.fixture(scope="module")
def server():
    with contextlib.chdir(ROOT), forkserver.Server(["colorsys"]) as started:  # the probe imports from ROOT
        started.ready()
        yield started


def step(server, tmp_path, *args: str, **popen) -> subprocess.Popen:
    """A step's process, as kfp.local starts it: it asks the server to run the probe."""
    code = f"import sys; from pipelines import executor; sys.exit(executor.request({server.address!r}, " \
           f"[{PROBE!r}, *sys.argv[1:]]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=tmp_path, env={**os.environ, "PROBE": "here"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_step_runs_in_a_child_with_the_callers_streams_folder_and_environment(server, tmp_path):
    proc = step(server, tmp_path, "3", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    seen = json.loads(out)
    assert seen["parent"] == server.process.pid
    assert seen["preloaded"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["probe"] == "here"
    assert seen["argv"] == ["3", "0"]
    assert err == "to stderr\n"


def test_a_step_whose_process_is_killed_dies_with_it(server, tmp_path):
    proc = step(server, tmp_path, "0", "600")
    child = json.loads(proc.stdout.readline())["pid"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its caller"
        time.sleep(0.05)


def test_a_caller_that_hangs_up_before_asking_leaves_the_server_serving(server, tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as caller:
        caller.connect(server.address)
    proc = step(server, tmp_path, "0", "0")
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_no_server_means_no_answer(tmp_path):
    assert executor.request(str(tmp_path / "nothing"), [PROBE, "0", "0"]) is None


def test_a_server_that_cannot_import_says_so():
    with forkserver.Server(["colorsys", "no_such_module_here"]) as broken:
        with pytest.raises(forkserver.ForkServerError, match="No module named 'no_such_module_here'"):
            broken.ready()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has ended; the server reaps it
        return f.read().split(") ")[1][0] != "Z"

