"""Multi-worker training on one machine: N processes, each with its own `TF_CONFIG`.

The workers get the same `TF_CONFIG` a Vertex CustomJob or a Kubeflow TFJob
sets, with addresses on free 127.0.0.1 ports, so `tfpipe train --workers 2` is
a real MultiWorkerMirroredStrategy run. Each worker's output is relayed with a
`[worker i]` prefix.

When one worker fails the others are stopped, since their collectives would
wait for it forever. A worker that crashed (killed by a signal it raises on
itself, as a native fault in TensorFlow does: SIGABRT, SIGSEGV...) restarts the
run, as a TFJob's `restartPolicy: OnFailure` or a Vertex CustomJob would. A
lone worker cannot rejoin: the collectives of a MultiWorkerMirroredStrategy
need every peer from the start, so the whole group restarts, on fresh ports,
and resumes from the chief's BackupAndRestore backup (the last finished
epoch); at most `RESTARTS` times. A worker that exits with a status (a user
error, a bad config) or that someone stopped (SIGKILL, SIGTERM, SIGINT) is not
restarted: the exit status says which one failed, and the same command run
again resumes.

The crash met here is TensorFlow's own: stopping its profiler (the TensorBoard
callback's `profile_batch`) on a worker other than the chief corrupts the heap
now and then, in `TraceMeRecorder::Consume` merging events that began on one
thread and ended on another (`free(): invalid size`, `munmap_chunk(): invalid
pointer` or a segfault; the nearest upstream report is
https://github.com/tensorflow/tensorboard/issues/3149). It was never seen
with the chief alone profiling, so `callbacks.build` profiles on the chief only
(the other workers' logs are temporary anyway); the restart covers any other
native fault.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tfpipe.train")

STOP_GRACE_SECONDS = 10
RESTARTS = 3  # of the whole group, after crashes, in one run
# Signals a process raises on itself when its native code faults; others come from someone stopping it.
CRASH_SIGNALS = frozenset({signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL})


@dataclass(frozen=True)
class Exit:
    """How one worker's process ended; `code` is Popen's return code, negative for a signal."""

    worker: int
    code: int

    @property
    def crashed(self) -> bool:
        return -self.code in CRASH_SIGNALS

    @property
    def status(self) -> int:
        """The exit status a shell reports for it: 128 + the signal's number for a signal."""
        return self.code if self.code >= 0 else 128 - self.code

    @property
    def ended(self) -> str:
        if self.code < 0:
            return f"was killed by signal {-self.code}"
        return f"exited with status {self.code}"

    def __str__(self) -> str:
        return f"worker {self.worker} {self.ended}"


def free_ports(count: int) -> list[int]:
    """Free 127.0.0.1 ports just below the kernel's ephemeral range, all different.

    The workers bind them seconds later, once TensorFlow has loaded. A port from the ephemeral range
    (what binding port 0 gives) could be handed to another process's bind or outgoing connection in
    between; the kernel never hands out ports below that range, so only a process that names the same
    port could take one.
    """
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
    choices = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < count:
        port = choices.randrange(max(1024, ephemeral - 10000), ephemeral)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def tf_configs(workers: int) -> list[dict[str, str]]:
    """Each worker's environment as `tfpipe train --workers N` and a Kubeflow TFJob of workers set it."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}
    return [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(workers)]


# Vertex's worker pools, as TF_CONFIG names their tasks: the first pool is the chief (one replica).
VERTEX_POOL_TASKS = ("chief", "worker", "ps", "evaluator")


def vertex_environments(replicas: list[int]) -> list[dict[str, str]]:
    """Each replica's environment as a Vertex CustomJob with these worker pools sets it: `CLUSTER_SPEC` (pools
    `workerpool0`...) and the `TF_CONFIG` derived from it (chief, worker, ps, evaluator)."""
    ports = iter(free_ports(sum(replicas)))
    pools = {f"workerpool{i}": [f"127.0.0.1:{next(ports)}" for _ in range(count)] for i, count in enumerate(replicas)}
    tasks = {VERTEX_POOL_TASKS[i]: addresses for i, addresses in enumerate(pools.values()) if addresses}
    environments = []
    for i, (pool, addresses) in enumerate(pools.items()):
        for index in range(len(addresses)):
            spec = {"cluster": pools, "environment": "cloud", "task": {"type": pool, "index": index}}
            task = {"type": VERTEX_POOL_TASKS[i], "index": index}
            tf_config = {"cluster": tasks, "environment": "cloud", "task": task}
            environments.append({"CLUSTER_SPEC": json.dumps(spec), "TF_CONFIG": json.dumps(tf_config)})
    return environments


def tfjob_environments(job: dict) -> list[dict[str, str]]:
    """Each replica's environment as the Kubeflow training operator sets it for this TFJob (`tfjob.tf_configs`),
    the replicas' service addresses mapped to free 127.0.0.1 ports."""
    from components.train import tfjob

    addresses = [address for group in tfjob.cluster(job).values() for address in group]
    here = [f"127.0.0.1:{port}" for port in free_ports(len(addresses))]
    return tfjob.tf_configs(job, dict(zip(addresses, here)))


def run_tfjob(job: dict) -> str:
    """The local operator: a TFJob run on this machine as the training operator runs it, awaited as `tfjob.run`
    awaits it on a cluster; "Succeeded", else a TrainError naming the replica that failed.

    One process per replica of each replica spec, in the spec's order (the chief first), each with the TF_CONFIG
    the operator sets (`tfjob_environments`) and the job's container command: tfpipe's replicas all run one
    container, whose `python` is, here, the interpreter of this step (as kfp.local runs a step's `python3`).
    `launch` supervises them: a crash restarts the group, as `restartPolicy: OnFailure` restarts a pod. The
    replicas share this machine's files, so the job's paths need not be on gs://.
    """
    from components.train import tfjob
    from components.train.errors import TrainError

    replicas = tfjob.replicas(job)
    program, *arguments = tfjob.command(job)
    command = [sys.executable if program == "python" else program, *arguments]
    failure = launch(command, len(replicas), environments=lambda _: tfjob_environments(job))
    if failure:
        raise TrainError(f"TFJob {tfjob.qualified_name(job)} failed: replica {replicas[failure.worker].name} "
                         f"{failure.ended}")
    return "Succeeded"


def worker_command(examples: str, out: str, config: str | None, overrides: list[str]) -> list[str]:
    """The train step's command line for one worker."""
    command = [sys.executable, "-m", "components", "train", "--examples", examples, "--out", out]
    if config:
        command += ["--config", config]
    return command + [f"--set={item}" for item in overrides]


def train(cfg, examples: str, out: str) -> dict[str, float]:
    """The train step, with the resolved config written beside its outputs; the eval metrics.

    In this process when one worker is asked for, or when TF_CONFIG says this process is already one
    worker of a cluster (a Vertex CustomJob, a TFJob); as a TFJob with `runtime.launcher: tfjob` (run by
    the local operator, `run_tfjob`, where the step's container says so: `tfjob.operated_here`); else in
    `cfg.runtime.workers` local processes.
    """
    from components.common import io
    from components.train import run, strategy, tfjob
    from components.train.errors import WorkersFailed

    cfg = resolve_warm_start(cfg)
    if cfg.runtime.launcher == "tfjob" and not os.environ.get("TF_CONFIG"):
        return tfjob.train(cfg, examples, out, operator=run_tfjob if tfjob.operated_here() else None)
    if cfg.runtime.workers == 1 or os.environ.get("TF_CONFIG"):
        # A config that says where its data comes from also says its label: examples of another are an error.
        metrics = run(cfg.train, examples, out, label=cfg.ingest.label if cfg.ingest.source else "").metrics
        if strategy.is_chief():
            cfg.write(out)
        return metrics
    io.makedirs(out)
    cfg.write(out)  # what every worker reads: the warm start already resolved, so all start from one model
    failure = launch(worker_command(examples, out, f"{out}/config.json", []), cfg.runtime.workers)
    if failure:
        raise WorkersFailed(failure.status)
    return io.read_json(f"{out}/metrics.json")


def resolve_warm_start(cfg):
    """`train.warm_start: last_blessed` as the path of that model: the registry's production version, else its
    newest blessed one; none on a first run, which trains from fresh weights and says so."""
    if cfg.train.warm_start != "last_blessed":
        return cfg
    from components.common.registry import Registry

    baseline = Registry(cfg.model_home).baseline()
    if baseline is None:
        log.info("train: train.warm_start=last_blessed, but %s has no blessed model yet: fresh weights",
                 cfg.model_home)
    source = baseline.model if baseline is not None else "none"
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, warm_start=source))


def launch(command: list[str], workers: int, restarts: int = RESTARTS,
           environments: Callable[[int], list[dict[str, str]]] = tf_configs) -> Exit | None:
    """Runs `command` once per worker, each with its part of `environments(workers)` (fresh ports on every
    attempt); None when all succeed, else the failure that stopped the run.

    After a crash every worker starts again, up to `restarts` times (the module's docstring says why).
    """
    restart = 0
    while failure := run_group(command, environments(workers)):
        if not failure.crashed:
            print("the run stopped (run the same command again to resume)", file=sys.stderr, flush=True)
            return failure
        crash = f"worker {failure.worker} crashed ({signal.Signals(-failure.code).name})"
        if restart == restarts:
            print(f"{crash} after {restarts} restarts; the run stopped (run the same command again to resume)",
                  file=sys.stderr, flush=True)
            return failure
        restart += 1
        print(f"{crash}; restarting all {workers} workers from the last backup (restart {restart} of {restarts})",
              file=sys.stderr, flush=True)
    return None


def run_group(command: list[str], environments: list[dict[str, str]]) -> Exit | None:
    """One attempt of the whole group, a worker per environment: None when every worker succeeds, else the
    failure.

    The others are stopped as soon as one fails, and every worker's output is relayed before this returns.
    """
    workers = len(environments)
    exits: queue.Queue[Exit] = queue.Queue()
    procs, relays = [], []
    try:
        for i, environment in enumerate(environments):
            proc = subprocess.Popen(command, env={**os.environ, **environment}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            relay = threading.Thread(target=_relay, args=(proc, i, exits), daemon=True)
            relay.start()
            procs.append(proc)
            relays.append(relay)
        print(f"started {workers} workers: pids {', '.join(str(p.pid) for p in procs)}", flush=True)
        failure = _failure(exits, workers)
        if failure:
            print(f"{failure}; stopping the others", file=sys.stderr, flush=True)
        return failure
    finally:
        _stop([p for p in procs if p.poll() is None])
        for relay in relays:
            relay.join(STOP_GRACE_SECONDS)


def _failure(exits: queue.Queue[Exit], workers: int) -> Exit | None:
    """The first failure, unless a crash ended at the same moment: then the crash, which caused the other.

    A crashed worker's peers fail too, with a plain status, once their collectives lose it; on busy cores
    both may be seen at once, and the cause must win so that the run restarts.
    """
    for _ in range(workers):
        first = exits.get()
        if first.code:
            seen = [first]
            while not exits.empty():
                seen.append(exits.get())
            return next((e for e in seen if e.crashed), first)
    return None


def _relay(proc: subprocess.Popen, worker: int, exits: queue.Queue[Exit]) -> None:
    """Relays the worker's output, then reports its exit: the output ends when the process does."""
    for line in proc.stdout:
        sys.stdout.write(f"[worker {worker}] {line}")
        sys.stdout.flush()
    exits.put(Exit(worker, proc.wait()))


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
