"""A real server killed with SIGKILL while it logs: `tfpipe monitor` reads the whole records of the file it never
closed and reports the file as unfinished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from components.serve import announce
from components.serve.client import RestClient
from tests.components.serve.test_rest import VALID
from tests.conftest import ROOT

TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def logged_bytes(logs: Path) -> int:
    return sum(p.stat().st_size for p in logs.glob(".requests-*.tmp"))


def test_the_log_of_a_server_killed_mid_write_is_read_and_reported_unfinished(tmp_path, penguins_home,
                                                                             penguins_examples):
    logs = tmp_path / "logs"
    server = subprocess.Popen([TFPIPE, "serve", "--model-base", str(penguins_home), "--rest-port", "0",
                               "--grpc-port", "0", "--log-sampling-rate", "1.0", "--log-dir", str(logs)],
                              cwd=ROOT, env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        listening = announce.wait_for(server, 120, lines)
        assert listening is not None, "".join(lines)
        client = RestClient(listening.rest_url, "penguins")
        deadline = time.monotonic() + 120  # a hang guard: the writer reaches the disk within a few requests
        while not logged_bytes(logs):
            assert time.monotonic() < deadline, "nothing reached the request log"
            client.predict(instances=[VALID] * 8)
        server.send_signal(signal.SIGKILL)
    finally:
        server.kill()
        server.wait(timeout=60)
    [unfinished] = [str(p) for p in logs.glob(".requests-*.tmp")]

    done = subprocess.run([TFPIPE, "monitor", "--log", str(logs), "--examples", penguins_examples, "--out",
                           str(tmp_path / "out"), "--window", "1d"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: a threshold crossed (every request is the same row)
    assert "unfinished (" in done.stdout
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())
    [file] = findings["unfinished_files"]
    assert file["path"] == unfinished
    assert 1 <= file["records"] <= sum(w["requests"] for w in findings["windows"])
