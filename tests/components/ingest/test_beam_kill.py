"""A Beam ingest killed while its workers write leaves nothing that looks complete, and the next run recovers."""

import os
import signal
import subprocess
import sys
import time

import pytest

from components.common.config import IngestConfig
from components.ingest import run
from components.ingest.beam_engine import WORK
from tests.conftest import ROOT, people_rows, write_csv


@pytest.mark.slow
def test_killed_beam_ingest_leaves_no_output(tmp_path):
    header, rows = people_rows(150_000)
    big = write_csv(tmp_path / "big.csv", header, rows)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Its own session, so that the kill takes the runner's worker processes with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "components", "ingest", "--set", f"ingest.source={big}", "--set", "ingest.engine=beam",
         "--set", "ingest.batch_rows=2048", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    stages = []
    while time.monotonic() < deadline and proc.poll() is None:
        stages = list(tmp_path.glob("out.staging-*"))
        if stages and any(p.stat().st_size > 0 for p in stages[0].glob(f"{WORK}/train/*.gz")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed; make the file bigger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert not out.exists()
    assert not (stages[0] / "schema.json").exists()
    assert not list(stages[0].glob("train/*.gz"))
    run(IngestConfig(source=str(write_csv(tmp_path / "small.csv", header, rows[:50]))), str(out))
    assert not list(tmp_path.glob("out.staging-*"))
    assert (out / "schema.json").exists()
