"""A killed ingest leaves nothing that looks complete, and the previous output survives."""

import os
import signal
import subprocess
import sys
import time

import pytest

from components.common.config import IngestConfig
from components.ingest import run
from tests.conftest import ROOT, people_rows, write_csv


@pytest.mark.slow
def test_killed_ingest_keeps_previous_output(tmp_path):
    header, rows = people_rows(300)
    small = write_csv(tmp_path / "small.csv", header, rows)
    out = tmp_path / "out"
    run(IngestConfig(source=str(small)), str(out))
    before = (out / "schema.json").read_text()

    header, rows = people_rows(400_000)
    big = write_csv(tmp_path / "big.csv", header, rows)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "components", "ingest", "--set", f"ingest.source={big}",
         "--set", "ingest.batch_rows=4096",
         "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    stages = []
    while time.monotonic() < deadline and proc.poll() is None:
        stages = list(tmp_path.glob("out.staging-*"))
        if stages and any(p.stat().st_size > 0 for p in stages[0].glob("train/*.gz")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed; make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert (out / "schema.json").read_text() == before
    assert not (stages[0] / "schema.json").exists()
    # The next run clears the dead run's staging folder and completes.
    run(IngestConfig(source=str(small), shards=1), str(out))
    assert not list(tmp_path.glob("out.staging-*"))
    assert len(list((out / "train").iterdir())) == 1
