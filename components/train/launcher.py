"""Multi-worker training on one machine: N processes, each with its own `TF_CONFIG`.

The workers get the same `TF_CONFIG` a Vertex CustomJob or a Kubeflow TFJob
sets, with addresses on free 127.0.0.1 ports, so `tfpipe train --workers 2` is
a real MultiWorkerMirroredStrategy run. Each worker's output is relayed with a
`[worker i]` prefix. When one worker dies the others are stopped, since their
collectives would wait for it forever, and the exit status says which one
failed; the same command run again resumes from the chief's backup.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

STOP_GRACE_SECONDS = 10


def free_ports(count: int) -> list[int]:
    """Ports the OS says are free on 127.0.0.1, all held open together so that they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(workers: int) -> list[str]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def worker_command(examples: str, out: str, config: str | None, overrides: list[str]) -> list[str]:
    """The train step's command line for one worker."""
    command = [sys.executable, "-m", "components", "train", "--examples", examples, "--out", out]
    if config:
        command += ["--config", config]
    return command + [f"--set={item}" for item in overrides]


def train(cfg, examples: str, out: str) -> dict[str, float]:
    """The train step, with the resolved config written beside its outputs; the eval metrics.

    In this process when one worker is asked for, or when TF_CONFIG says this process is already one
    worker of a cluster (a Vertex CustomJob, a TFJob); as a TFJob with `runtime.launcher: tfjob`; else
    in `cfg.runtime.workers` local processes.
    """
    from components.common import io
    from components.train import TrainError, run, strategy, tfjob

    if cfg.runtime.launcher == "tfjob" and not os.environ.get("TF_CONFIG"):
        return tfjob.train(cfg, examples, out)
    if cfg.runtime.workers == 1 or os.environ.get("TF_CONFIG"):
        metrics = run(cfg.train, examples, out).metrics
        if strategy.is_chief():
            cfg.write(out)
        return metrics
    io.makedirs(out)
    cfg.write(out)
    code = launch(worker_command(examples, out, f"{out}/config.json", []), cfg.runtime.workers)
    if code:
        raise TrainError(f"train: a worker failed (exit status {code}); its output is above")
    return io.read_json(f"{out}/metrics.json")


def launch(command: list[str], workers: int) -> int:
    """Runs `command` once per worker; 0 when all succeed, else the first failure's exit status."""
    procs = []
    try:
        for i, tf_config in enumerate(tf_configs(workers)):
            proc = subprocess.Popen(command, env={**os.environ, "TF_CONFIG": tf_config}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            threading.Thread(target=_relay, args=(proc.stdout, f"[worker {i}] "), daemon=True).start()
            procs.append(proc)
        print(f"started {workers} workers: pids {', '.join(str(p.pid) for p in procs)}", flush=True)
        while True:
            codes = [p.poll() for p in procs]
            failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
            if failed is not None:
                code = codes[failed]
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                print(f"worker {failed} {how}; stopping the others (run the same command again to resume)",
                      file=sys.stderr, flush=True)
                return code if code > 0 else 128 - code
            if all(code == 0 for code in codes):
                return 0
            time.sleep(0.2)
    finally:
        _stop([p for p in procs if p.poll() is None])


def _relay(stream, prefix: str) -> None:
    for line in stream:
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
