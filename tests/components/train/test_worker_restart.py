"""A worker of a 2-worker run that crashes mid-epoch: the launcher restarts the group, which resumes from the backup."""

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.components.train.test_faults import assert_resumed, finish, start, wait_for_epoch
from tests.conftest import ROOT


@contextlib.contextmanager
def no_core_dumps():
    """Children started inside inherit a core size limit of 0: a crash leaves no core file in the repository."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


@pytest.mark.slow
def test_sigabrt_mid_epoch_restarts_both_workers_from_the_backup(tmp_path, digits_examples):
    out, epochs = tmp_path / "out", 3
    sets = [f"train.epochs={epochs}", "train.batch_size=32", "train.model.api=functional"]
    with no_core_dumps():
        launcher = start(digits_examples, out, sets, workers=2)
    wait_for_epoch(out, 1, launcher)
    worker = int(re.search(r"started 2 workers: pids \d+, (\d+)", Path(f"{out}.log").read_text())[1])
    os.kill(worker, signal.SIGABRT)  # what TensorFlow's native code does on a fault (`free(): invalid size`)
    log = finish(launcher, out)
    assert "worker 1 was killed by signal 6; stopping the others" in log
    assert "worker 1 crashed (SIGABRT); restarting all 2 workers from the last backup (restart 1 of 3)" in log
    assert log.count("started 2 workers") == 2
    resumed_at = int(re.search(r"resuming after epoch (\d+) ", log)[1])
    assert 1 <= resumed_at < epochs
    assert_resumed(out, digits_examples, epochs, resumed_at, log)
    training = json.loads((out / "training.json").read_text())
    assert training["workers"] == training["replicas"] == 2
    assert training["global_batch_size"] == 64
    assert training["loop"] == "custom"  # fit mode asked for, and why it is not used
    assert "keras-team/keras#20585" in log
    assert "[worker 0]" in log
    assert "[worker 1]" in log
    assert not list(out.glob(".train-worker-*")), "the restarted worker's temporary outputs were left behind"


@pytest.mark.slow
def test_a_plain_failure_is_not_restarted(tmp_path):
    """Only crashes restart: a worker's error exit (here, examples that do not exist) stops the run at once."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "components", "train", "--examples", str(tmp_path / "missing"), "--out", str(out),
               "--workers", "2"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode not in (0, 128 + signal.SIGABRT), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "; stopping the others" in proc.stderr
    assert "run the same command again to resume" in proc.stderr
    assert "restarting" not in proc.stderr
    assert proc.stdout.count("started 2 workers") == 1


def test_worker_ports_are_free_distinct_and_never_handed_out_for_port_0():
    from components.train.launcher import free_ports

    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(1024 <= p < ephemeral for p in ports)
    with socket.socket() as s:  # what another process binding port 0 gets is never one of them
        s.bind(("127.0.0.1", 0))
        assert s.getsockname()[1] >= ephemeral


def test_the_launcher_loads_no_tensorflow():
    """It only starts the workers: TensorFlow's seconds and memory belong to them."""
    code = "import sys, components.train.launcher; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout.strip() == "False"
