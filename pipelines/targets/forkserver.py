"""A process that does the steps' slow imports once and forks a ready process for each step (local runs only).

Importing TensorFlow and Keras takes a new process about 3 s on
2 cores, and a local run starts six steps that each need them. `tfpipe run`
starts one `Server` while it builds the pipeline: it imports the steps' modules
and nothing more (no TensorFlow runtime, no threads of ours), then waits. Each
step's process (`pipelines.executor.request`) sends it its arguments, environment,
working folder and standard streams, and waits in turn: the server forks a
child that takes those over and runs the step as the step's own process would
(`executor.execute`), then sends back the child's exit status. A step's process
that goes away (Ctrl-C, kfp.local stopping) takes the child and whatever the
child started with it. Containers and clusters never see this: their steps run
in their own processes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from components.common.errors import TfpipeError
from pipelines import executor

READY = b"ready\n"


class ForkServerError(TfpipeError):
    """The fork server could not start: it failed to import the steps' modules."""


class Server:
    """The fork server as a context: started on entry, stopped on exit; `ready()` waits for its imports."""

    def __init__(self, preload: Sequence[str]):
        self.preload = preload

    def __enter__(self) -> Server:
        self.folder = tempfile.TemporaryDirectory(prefix="tfpipe-forkserver-")
        self.address = f"{self.folder.name}/socket"
        self.log = Path(self.folder.name) / "server.log"
        # Bound here, before the server starts, so that a step never finds the address missing.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, open(self.log, "wb") as log:
            listener.bind(self.address)
            listener.listen()
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(listener.fileno()), *self.preload],
                pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env={**os.environ, "_KFP_RUNTIME": "true"},  # as each step's command sets it: kfp without its client
                start_new_session=True)  # the console's Ctrl-C reaches the steps' processes, which end their children
        return self

    def ready(self) -> str:
        """Waits until the server has imported the steps' modules; its address."""
        if self.process.stdout.readline() != READY:
            self.process.wait()
            raise ForkServerError(f"the fork server stopped (status {self.process.returncode}) before it imported "
                                  f"{', '.join(self.preload)}:\n{self.log.read_text()[-3000:]}")
        return self.address

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait()
        self.process.stdout.close()
        self.folder.cleanup()


def serve(listener: socket.socket, preload: Sequence[str]) -> NoReturn:
    """The server's loop: a child per request, its exit status back to the requester."""
    for module in preload:
        importlib.import_module(module)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    running: dict[int, socket.socket] = {}  # child pid -> the connection of the step's process
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    received = _receive(conn)
                    if received is None:  # its sender went away before it had asked
                        conn.close()
                        continue
                    pid = _fork(conn, *received, selector)
                    running[pid] = conn
                    selector.register(conn, selectors.EVENT_READ, pid)
                    selector.register(os.pidfd_open(pid), selectors.EVENT_READ, pid)
                elif isinstance(key.fileobj, socket.socket):  # the step's process hung up: it is gone
                    selector.unregister(key.fileobj)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(key.data, signal.SIGKILL)
                else:  # the child ended
                    selector.unregister(key.fileobj)
                    os.close(key.fileobj)
                    _, status = os.waitpid(key.data, 0)
                    conn = running.pop(key.data)
                    with contextlib.suppress(OSError):
                        conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())
                    with contextlib.suppress(KeyError):
                        selector.unregister(conn)
                    conn.close()
    finally:
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _receive(conn: socket.socket) -> tuple[dict, list[int]] | None:
    """The request on `conn` and the streams that came with it, or None if its sender went away first."""
    header, streams, _, _ = socket.recv_fds(conn, 8, len(executor.STREAMS))
    size = int.from_bytes(header, "big")
    with conn.makefile("rb") as reader:  # closing the reader leaves the connection open
        body = reader.read(size)
    if len(header) == 8 and len(streams) == len(executor.STREAMS) and len(body) == size:
        return json.loads(body), streams
    for fd in streams:
        os.close(fd)
    return None


def _fork(conn: socket.socket, request: dict, streams: list[int], selector: selectors.BaseSelector) -> int:
    """Starts the child that runs `request` with `streams`; its pid (also its process group)."""
    pid = os.fork()
    if pid:
        with contextlib.suppress(OSError):  # as the child does: whichever runs first, the group exists
            os.setpgid(pid, pid)
        for fd in streams:  # else the step's output pipe stays open after the step has ended
            os.close(fd)
        return pid
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for key in list(selector.get_map().values()):
            os.close(key.fd)
        selector.close()
        conn.close()
        for fd, target in zip(streams, executor.STREAMS, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        executor.execute(request["argv"])
    finally:
        os._exit(1)  # only reached if the child failed before the step ran: never return into the server's loop


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2:])
