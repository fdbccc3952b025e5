"""Worker processes for Beam's local multi-process runner, forked from one warm process started before the
pipeline is built.

    warm = beam_workers.Warm(2, ("components.ingest.beam_engine",))  # first thing in the step
    ...                                                             # the step's own work meanwhile
    with warm:
        beam.Pipeline(runner=warm.runner(), options=...).run()

A worker of Beam's runner (FnApiRunner) is a process it starts once the
pipeline runs, which then spends most of a second importing Beam before it
takes any work: time that the launching process spends waiting, on a job
whose rows take a few seconds (200,000 rows on this machine's 2 cores).
One warm process makes that import at once, beside the step's own
(sampling, planning, importing Beam itself), with the step's modules, and
forks a worker for each one the runner asks for: the import is paid once,
not once a worker (on 2 cores, a 1,000-row ingest's first run took 2.2 s
with the runner's own workers, 1.8-2.0 s with a warm process a worker, each
importing beside the step, and 1.3 s with one that forks). Nothing of gRPC
exists in it before a fork, only its module.

The runner starts each worker with a shell command and hands it its
endpoints in the environment (`local_job_service.SubprocessSdkWorker`).
Here that command is a bare Python (`-S`, the standard library's socket
and json only) that passes those endpoints over a Unix socket to the warm
process and then waits, ending with the forked worker's status, so the
runner sees a worker start and end as it would its own. The forked worker
runs Beam's SDK harness (`sdk_worker_main.main`), the code the runner's own
command runs. The warm process ends when its launcher closes this (or
dies): it waits on a pipe whose other end only the launcher holds.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# What the runner puts in a worker's environment (local_job_service.SubprocessSdkWorker): handed over as is.
HANDED_OVER = ("CONTROL_API_SERVICE_DESCRIPTOR", "LOGGING_API_SERVICE_DESCRIPTOR", "PIPELINE_OPTIONS", "WORKER_ID")
ACCEPTED = b"+"  # a warm process's first byte to a launcher: taken (the status byte follows at the end)
SDK_WORKER = "apache_beam.runners.worker.sdk_worker_main"  # the runner's own worker command runs this module
ACCEPT_SECONDS = 600  # a launcher that no warm process takes within this fails, rather than waiting for ever

_LAUNCHER = f"""
import json, os, socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
conn.sendall(json.dumps({{k: os.environ[k] for k in {HANDED_OVER!r} if k in os.environ}}).encode() + b"\\n")
conn.settimeout({ACCEPT_SECONDS})
try:
    taken = conn.recv(1) == {ACCEPTED!r}
except TimeoutError:
    taken = False
if not taken:
    sys.exit("no warm Beam worker took this one within {ACCEPT_SECONDS} s")
conn.settimeout(None)
status = conn.recv(1)
sys.exit(status[0] if status else 1)
"""


class Warm:
    """The warm process, started now, importing Beam's SDK harness and `modules`; it forks up to `count` workers
    at a time."""

    def __init__(self, count: int, modules: tuple[str, ...] = ()):
        self._folder = tempfile.mkdtemp(prefix="tfpipe-beam-workers-")
        self.address = str(Path(self._folder) / "workers.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(self.address)
        listener.listen(count)
        alive, self._alive = os.pipe()  # the launcher's end: closing it (or dying) sends idle workers away
        try:
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(listener.fileno()), str(alive), *modules],
                pass_fds=(listener.fileno(), alive), env=env)
        finally:
            listener.close()
            os.close(alive)

    def runner(self):
        """Beam's runner, its workers these: `count` of them at a time (pair with `--direct_num_workers=count`)."""
        from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner
        from apache_beam.transforms.environments import SubprocessSDKEnvironment

        command = f"{shlex.quote(sys.executable)} -S -c {shlex.quote(_LAUNCHER)} {shlex.quote(self.address)}"
        return FnApiRunner(default_environment=SubprocessSDKEnvironment.from_command_string(command))

    def close(self) -> None:
        """Ends the warm process once its workers have (those that ran ended with their pipeline)."""
        os.close(self._alive)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Warm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(listener_fd: int, alive_fd: int, modules: list[str]) -> int:
    """The warm process: imports once, then forks a worker for each launcher until its launcher goes."""
    import select

    harness = _harness(modules)
    listener = socket.socket(fileno=listener_fd)
    workers = []
    while True:
        ready, _, _ = select.select([listener, alive_fd], [], [])
        if alive_fd in ready:
            break
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:  # the worker: nothing of gRPC exists before the fork (only its module is loaded)
            listener.close()
            os._exit(_work(conn, harness))
        conn.close()
        workers.append(pid)
    for pid in workers:
        os.waitpid(pid, 0)
    shutil.rmtree(os.path.dirname(listener.getsockname()), ignore_errors=True)  # its launcher may be gone
    return 0


def _harness(modules: list[str]):
    """What a worker runs, returning its exit status: Beam's SDK harness, here where it and `modules` are loaded;
    or, where they failed to load, Beam's own worker command, which starts as the runner would have started it
    (a module only loaded ahead of need is not needed for the pipeline to run)."""
    import importlib
    import traceback

    try:
        from apache_beam.runners.worker import sdk_worker_main

        for module in modules:
            importlib.import_module(module)
    except Exception:
        failed = traceback.format_exc()

        def cold() -> int:
            print(f"tfpipe: a warm Beam worker could not load its modules; this one starts cold:\n{failed}",
                  file=sys.stderr)
            return subprocess.call([sys.executable, "-m", SDK_WORKER])

        return cold

    def warm() -> int:
        try:
            sdk_worker_main.main([])
        except Exception:  # the harness has logged it to the runner
            return 1
        return 0

    return warm


def _work(conn: socket.socket, harness) -> int:
    """One worker: the launcher's endpoints into this process's environment, then the harness on them."""
    with conn, conn.makefile("rb") as given:
        os.environ.update(json.loads(given.readline()))
        conn.sendall(ACCEPTED)
        status = harness()
        sys.stdout.flush()
        sys.stderr.flush()
        conn.sendall(bytes([status & 0xFF]))
    return status


if __name__ == "__main__":
    code = _serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # its workers have ended: the interpreter's teardown (Beam's and Arrow's modules, 0.3 s) would
    # only delay the step that waits for it
