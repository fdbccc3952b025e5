"""Warm Beam workers: a pipeline's work runs in processes forked from the warm one, which had the modules loaded;
nothing of them outlives the step, whether it closes them, fails, or is killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam

from components.common import beam as beam_options
from components.common.beam_workers import Warm
from components.common.config import BeamConfig
from tests.conftest import ROOT

PRELOADED = "components.ingest.farmhash"  # nothing here or in Beam imports it: only the warm process did


def _where(element):
    return element, os.getpid(), os.getppid(), PRELOADED in sys.modules


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text():
            return True
        time.sleep(0.05)
    return False


def test_a_pipeline_runs_in_workers_forked_from_the_warm_process_with_its_modules_loaded(tmp_path):
    cfg = BeamConfig(workers=2)
    before = set(_children(os.getpid()))
    warm = beam_options.warm_workers(cfg, (PRELOADED,))
    assert isinstance(warm, Warm)
    [warm_pid] = set(_children(os.getpid())) - before
    with warm:
        with beam_options.pipeline(cfg, "tfpipe-warm-test", warm) as p:
            _ = (p | beam.Create(range(8)) | beam.Reshuffle() | beam.Map(_where) | beam.Map(json.dumps)
                 | beam.io.WriteToText(str(tmp_path / "seen")))
    seen = [json.loads(line) for f in tmp_path.glob("seen*") for line in f.read_text().splitlines()]
    assert sorted(s[0] for s in seen) == list(range(8))
    assert {s[2] for s in seen} == {warm_pid}  # each worker a child of the warm process, not of the runner
    assert all(s[3] for s in seen)
    assert _gone(warm_pid)
    assert not Path(warm.address).parent.exists()


def test_only_the_local_multi_process_runner_gets_warm_workers():
    assert beam_options.warm_workers(BeamConfig(runner="DataflowRunner", project="p", temp_location="gs://b/t"),
                                     ()) is None
    assert beam_options.warm_workers(BeamConfig(options=("--direct_running_mode=in_memory",)), ()) is None


def test_workers_start_cold_where_the_warm_process_could_not_load_a_module(tmp_path):
    """A module loaded ahead of need is not needed to run: the pipeline runs, on workers Beam's way."""
    cfg = BeamConfig(workers=1)
    with beam_options.warm_workers(cfg, ("components.no_such_module",)) as warm, \
            beam_options.pipeline(cfg, "tfpipe-warm-test", warm) as p:
        _ = p | beam.Create([1, 2]) | beam.Map(_where) | beam.Map(json.dumps) | beam.io.WriteToText(str(tmp_path / "o"))
    seen = [json.loads(line) for f in tmp_path.glob("o*") for line in f.read_text().splitlines()]
    assert sorted(s[0] for s in seen) == [1, 2]
    assert not any(s[3] for s in seen)  # a fresh worker: nothing loaded ahead


def test_the_warm_process_ends_with_its_launcher_killed():
    code = ("import sys, time; from components.common.beam_workers import Warm; w = Warm(2); "
            "print(w.address, flush=True); time.sleep(600)")
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        address = Path(launcher.stdout.readline().strip())
        [warm_pid] = _children(launcher.pid)
    finally:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
    assert _gone(warm_pid)
    assert not address.parent.exists()
