"""A user error ends ingest cleanly: its source closed before the error leaves, and the command with exit code 2.

An Arrow reader left reading a Python file when the interpreter shut down
made the process abort now and then instead ("terminate called without an
active exception", exit -6): rarely on idle cores, more often when every
core is busy and Arrow's threads fall behind. So the command runs many
times here on one core that a busy-loop process holds: every core the
commands may use is busy, and the machine's other cores stay free for
whatever runs beside this test.
"""

import contextlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.common.config import IngestConfig
from components.ingest import IngestError, run
from tests.conftest import ROOT

RUNS = 30
CONCURRENT = 2  # runs at once, on the same core: they load it too
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# Rows enough for two 4 MiB CSV blocks and several Parquet row groups: Arrow is still reading ahead when the
# error comes. JSON lines are read in Python, in the calling thread, and need no more than a batch.
ROWS = 500_000
JSON_ROWS = 2_000


def on_core(core: int):
    """A preexec_fn that keeps the child, and every thread it starts, on `core`."""
    return lambda: os.sched_setaffinity(0, {core})


@contextlib.contextmanager
def busy_core():
    """One of this process's cores, held busy by a busy-loop process for as long as the block lasts."""
    core = max(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"], preexec_fn=on_core(core))
    try:
        yield core
    finally:
        hog.kill()
        hog.wait()


def sources(tmp_path) -> list:
    """The same rows, without the configured label column 'target', as CSV, JSON lines and Parquet."""
    csv = tmp_path / "d.csv"
    csv.write_text("id,age,city,label\n" + "7,40,Oslo,1\n" * ROWS)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"id": 7, "age": 40, "city": "Oslo", "label": 1}\n' * JSON_ROWS)
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": [7] * ROWS, "age": [40] * ROWS, "city": ["Oslo"] * ROWS, "label": [1] * ROWS}),
                   parquet, row_group_size=50_000)
    return [csv, jsonl, parquet]


def open_files(path) -> int:
    """How many of this process's file descriptors point at `path`."""
    fds = os.listdir("/proc/self/fd")
    return sum(os.path.realpath(f"/proc/self/fd/{fd}") == str(path) for fd in fds)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["csv", "jsonl", "parquet"])
def test_a_user_error_closes_the_source_before_it_leaves(tmp_path, index):
    source = sources(tmp_path)[index]
    with pytest.raises(IngestError, match="label column 'target' not found") as err:
        run(IngestConfig(source=str(source), label="target"), str(tmp_path / "out"))
    # `err` keeps the traceback, and with it every frame the error passed through: nothing may still hold the file.
    assert err.traceback
    assert open_files(source) == 0


def ingest_without_label(source, out, core: int) -> tuple:
    """(source name, exit code, the stderr lines that start with "error: ", the end of stderr)."""
    done = subprocess.run([sys.executable, "-m", "components", "ingest", "--set", f"ingest.source={source}",
                           "--set", "ingest.label=target", "--out", str(out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
                          preexec_fn=on_core(core))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    return source.name, done.returncode, errors, done.stderr[-300:]


@pytest.mark.slow
def test_a_missing_label_exits_2_every_time_on_busy_cores(tmp_path):
    paths = sources(tmp_path)
    with busy_core() as core, ThreadPoolExecutor(CONCURRENT) as pool:
        outcomes = list(pool.map(lambda i: ingest_without_label(paths[i % len(paths)], tmp_path / "out", core),
                                 range(RUNS)))
    failed = [o for o in outcomes if o[1] != 2 or len(o[2]) != 1 or "label column 'target' not found" not in o[2][0]]
    assert not failed, f"{len(failed)} of {RUNS} runs did not end with exit 2 and one error line: {failed[:3]}"
    assert not (tmp_path / "out").exists()
