"""How a server started in another process says where it listens: one JSON line under a fixed key.

`tfpipe serve` prints `{"tfpipe_serve_listening": {...}}` on stdout once both
ports listen; the infra check and the benchmarks read that line with
`wait_for`, so no one parses the human log line, which may change.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
from dataclasses import dataclass

KEY = "tfpipe_serve_listening"


@dataclass(frozen=True)
class Listening:
    model: str
    versions: tuple[int, ...]
    rest_url: str
    grpc_target: str

    def to_line(self) -> str:
        return json.dumps({KEY: dataclasses.asdict(self)})

    @classmethod
    def from_line(cls, line: str) -> Listening | None:
        """The announcement in `line`, or None when the line is anything else."""
        try:
            fields = json.loads(line)[KEY]
            return cls(fields["model"], tuple(fields["versions"]), fields["rest_url"], fields["grpc_target"])
        except (ValueError, KeyError, TypeError):
            return None


def wait_for(process: subprocess.Popen, timeout: float, lines: list[str]) -> Listening | None:
    """Reads the process's text stdout (kept in `lines`, and drained afterwards so it never blocks) until it
    announces itself; None if it exits or `timeout` passes first."""
    found: list[Listening] = []

    def read():
        for line in process.stdout:
            lines.append(line)
            if not found and (listening := Listening.from_line(line)):
                found.append(listening)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return found[0] if found else None
