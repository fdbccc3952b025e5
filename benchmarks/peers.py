"""Side by side: tfpipe's model server against what a user runs instead when the TF Serving binary is not at hand.

    make bench-peers   # makes each peer's venv (benchmarks/peers/<peer>/.venv), then runs this
    .venv/bin/python benchmarks/peers.py [--rounds 5] [--seconds 3] [--concurrency 1,32,128]
                                         [--only tfpipe,kserve,pytriton]

One SavedModel (the chapter's CNN on the bundled digits, trained and exported
as benchmarks/serve.py does), one load generator per protocol (wrk for REST,
h2load for gRPC, one 1-image request at a time per connection), the same
cores, one server at a time:

- tfpipe: `tfpipe serve` unbatched, batched (max 32 rows, 3 ms), and batched
  with every request logged (`serve.logging.sampling_rate=1.0`), which is
  what logging costs;
- kserve: KServe 0.21's Python ModelServer with the SavedModel in a
  `kserve.Model` (benchmarks/peers/kserve): V1 `:predict` over REST, the Open
  Inference Protocol's ModelInfer over gRPC (KServe's only gRPC protocol);
- pytriton: Triton's server through PyTriton 0.7, the SavedModel as a Python
  callable with Triton's dynamic batching (max 32, 3 ms): V2 infer over REST,
  ModelInfer over gRPC.

Every server is started first and stays up; then the load runs in
interleaved rounds: in each round, for each concurrency, every server in
turn (the order rotating from round to round) takes REST then gRPC load for
`--seconds`. A machine shared with other work drifts by tens of percent
within minutes, so every comparison is a ratio of two measurements taken
seconds apart in the same round, and what is reported is the median over
the rounds with its spread (lowest and highest round): a 10% difference
is resolved when the spread of its ratio stays on one side of it.

It prints each round's figures as they come (requests/s, p50 and p99
latency, the server's CPU milliseconds per request: its whole process
tree, from /proc), then per server, protocol and concurrency the medians,
then the ratios against the targets (tfpipe's best configuration against
each peer, gRPC against REST, request logging on against off), the
in-process limit (the SavedModel called directly at 1 and at 32 rows), and
last, one line: every figure as one JSON object. Before load, every
server's REST and gRPC answers are checked once (h2load sees HTTP statuses,
not gRPC's); tfpipe's metrics must also show no failed request. The load
generators share the cores with the servers, so their cost is in every
figure; so is anything else running on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import serve as bench  # benchmarks/serve.py: the model, the load generators, the in-process limit

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
MAX_BATCH, TIMEOUT_MICROS = 32, 3000
START_SECONDS = 300


@dataclass
class Contender:
    """A server as the benchmark drives it: how to start it, where to send each protocol's request, and what."""

    name: str
    rest_path: str
    rest_body: str
    grpc_method: str
    grpc_message: bytes
    process: subprocess.Popen | None = None
    rest: str = ""
    grpc: str = ""
    failures: Callable[[], float] = lambda: 0.0  # failed requests so far, where the server counts them
    own_group: bool = False  # started in a session of its own, with whatever it starts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(root: int) -> float:
    """User and system CPU of process `root` and every descendant, living or reaped."""
    parent, ticks = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        ticks[pid] = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    tree, frontier = {root}, [root]
    while frontier:
        children = [p for p, pp in parent.items() if pp in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def wait_ready(contender: Contender, url: str, lines_of: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if contender.process.poll() is not None:
            raise RuntimeError(f"exited with {contender.process.returncode}: {tail(lines_of)}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"not ready within {START_SECONDS} s: {tail(lines_of)}")


def tail(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]


def start_tfpipe(contender: Contender, home: Path, batching: bool, *extra: str) -> None:
    server = bench.Server(home, batching, MAX_BATCH, TIMEOUT_MICROS, *extra)
    contender.process, contender.rest, contender.grpc = server.proc, server.rest, server.grpc
    contender.failures = lambda: server.counts()[2]


def start_peer(contender: Contender, command: list[str], rest_port: int, grpc_port: int, ready: str,
               workdir: Path) -> None:
    log = workdir / f"{contender.name}.log"
    contender.process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                         start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    contender.rest, contender.grpc = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    contender.own_group = True
    wait_ready(contender, f"{contender.rest}{ready}", log)


def stop(contender: Contender) -> None:
    """Stops the server and whatever it started (PyTriton's tritonserver, its Python stubs)."""
    process = contender.process
    if process is None or process.poll() is not None:
        return
    send = (lambda sig: os.killpg(process.pid, sig)) if contender.own_group else process.send_signal
    send(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


def check_answers(contender: Contender) -> None:
    """One REST and one gRPC request answered without error: what h2load cannot see for gRPC."""
    request = urllib.request.Request(f"{contender.rest}{contender.rest_path}", contender.rest_body.encode(),
                                     {"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    if "error" in answer:
        raise RuntimeError(f"REST answered an error: {answer['error']}")
    with grpc.insecure_channel(contender.grpc) as channel:
        channel.unary_unary(contender.grpc_method)(contender.grpc_message, timeout=30)


def measure(contender: Contender, protocol: str, concurrency: int, seconds: float, workdir: Path) -> dict:
    if protocol == "rest":
        load = lambda: bench.wrk_loop(f"{contender.rest}{contender.rest_path}", contender.rest_body,  # noqa: E731
                                      concurrency, seconds, workdir)
    else:
        load = lambda: bench.h2load_loop(contender.grpc, contender.grpc_method, contender.grpc_message,  # noqa: E731
                                         concurrency, seconds, workdir)
    cpu, failures = cpu_seconds(contender.process.pid), contender.failures()
    result = load()
    cpu = cpu_seconds(contender.process.pid) - cpu
    if contender.failures() > failures:
        raise RuntimeError("the server failed requests under load")
    requests = result["rps"] * seconds
    return {"rps": round(result["rps"], 1), "p50_ms": round(result["p50"], 2), "p99_ms": round(result["p99"], 2),
            "cpu_ms_per_request": round(1000 * cpu / max(requests, 1), 3)}


def peer_message(peer: str, workdir: Path) -> bytes | None:
    """The peer's framed ModelInferRequest, written by its own wrapper with its own protos."""
    python = PEERS / peer / ".venv" / "bin" / "python"
    if not python.exists():
        return None
    path = workdir / f"{peer}.grpc"
    subprocess.run([str(python), str(PEERS / peer / "server.py"), "--grpc-request", str(path), "--name", "digits"],
                   check=True, capture_output=True)
    return path.read_bytes()[5:]  # h2load_loop frames it again


def contenders(home: Path, image: np.ndarray, workdir: Path, only: set[str]) -> list[tuple[Contender, object]]:
    """(contender, how to start it) for each server to compare; a peer without its venv is left out."""
    tfpipe_rest, tfpipe_grpc = bench.predict_body(image), bench.predict_message(image)
    logs = workdir / "request-logs"
    chosen = []
    if "tfpipe" in only:
        for name, batching, extra in [
                ("tfpipe", False, ()), ("tfpipe batched", True, ()),
                ("tfpipe batched, logging 1.0", True, ("--set", "serve.logging.sampling_rate=1.0",
                                                        "--set", f"serve.logging.dir={logs}"))]:
            contender = Contender(name, "/v1/models/digits:predict", tfpipe_rest, bench.PREDICT, tfpipe_grpc)
            chosen.append((contender, lambda c=contender, b=batching, e=extra: start_tfpipe(c, home, b, *e)))
    version = str(home / "1")
    v2_rest = json.dumps({"inputs": [{"name": "image", "shape": [1, *image.shape], "datatype": "UINT8",
                                      "data": image.reshape(-1).tolist()}]})
    for peer, rest_path, rest_body, ready in [
            ("kserve", "/v1/models/digits:predict", tfpipe_rest, "/v1/models/digits"),
            ("pytriton", "/v2/models/digits/infer", v2_rest, "/v2/models/digits/ready")]:
        if peer not in only:
            continue
        message = peer_message(peer, workdir)
        if message is None:
            print(f"{peer}: not installed ({PEERS / peer / '.venv'} is missing; make bench-peers makes it)")
            continue
        contender = Contender(peer, rest_path, rest_body, MODEL_INFER, message)
        ports = [free_port() for _ in range(3)]
        command = [str(PEERS / peer / ".venv" / "bin" / "python"), str(PEERS / peer / "server.py"),
                   "--model-dir", version, "--name", "digits", "--http-port", str(ports[0]),
                   "--grpc-port", str(ports[1])]
        if peer == "pytriton":
            command += ["--metrics-port", str(ports[2]), "--max-batch-size", str(MAX_BATCH),
                        "--batch-timeout-micros", str(TIMEOUT_MICROS)]
        chosen.append((contender, lambda c=contender, cmd=command, p=ports, r=ready:
                       start_peer(c, cmd, p[0], p[1], r, workdir)))
    return chosen


FIGURES = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
# (peer, concurrency): the throughput ratio tfpipe must reach, and whether its p99 must be no worse
TARGETS = {("kserve", 1): (1.0, False), ("pytriton", 32): (1.5, True), ("pytriton", 128): (1.5, True)}


def medians(rounds: list[dict]) -> dict:
    """Each figure's median over the rounds, and the lowest and highest requests/s."""
    return {**{k: round(statistics.median(r[k] for r in rounds), 3) for k in FIGURES},
            "rps_low": min(r["rps"] for r in rounds), "rps_high": max(r["rps"] for r in rounds)}


def ratio(ours: list[dict], theirs: list[dict], figure: str = "rps") -> dict:
    """`figure`'s ratio round by round (each pair measured seconds apart): median, lowest, highest."""
    each = [a[figure] / b[figure] for a, b in zip(ours, theirs, strict=True) if b[figure]]
    return {"median": round(statistics.median(each), 3), "low": round(min(each), 3), "high": round(max(each), 3)}


def verdicts(rounds: dict, levels: list[int]) -> dict:
    """tfpipe's best configuration (by median requests/s) against each peer, gRPC against REST, and what
    logging costs, at every protocol and concurrency the run measured."""
    found = {"against_peers": [], "grpc_vs_rest": [], "logging_cost": []}
    ours = [n for n in ("tfpipe", "tfpipe batched") if n in rounds]
    peers = [n for n in rounds if not n.startswith("tfpipe")]
    for level in levels:
        key = str(level)
        for protocol in ("rest", "grpc"):
            measured = [n for n in ours if rounds[n].get(protocol, {}).get(key)]
            if not measured:
                continue
            best = max(measured, key=lambda n: statistics.median(r["rps"] for r in rounds[n][protocol][key]))
            for peer in peers:
                if rounds[peer].get(protocol, {}).get(key):
                    a, b = rounds[best][protocol][key], rounds[peer][protocol][key]
                    target, p99_too = TARGETS.get((peer, level), (None, False))
                    throughput, p99 = ratio(a, b), ratio(a, b, "p99_ms")
                    found["against_peers"].append({
                        "protocol": protocol, "concurrency": level, "tfpipe": best, "peer": peer, "target": target,
                        "throughput_ratio": throughput, "p99_ratio": p99,
                        "met": None if target is None else
                        throughput["median"] >= target and (not p99_too or p99["median"] <= 1.0)})
            logged = rounds.get("tfpipe batched, logging 1.0", {}).get(protocol, {}).get(key)
            batched = rounds.get("tfpipe batched", {}).get(protocol, {}).get(key)
            if logged and batched:
                kept = ratio(logged, batched)
                found["logging_cost"].append({"protocol": protocol, "concurrency": level,
                                              "cost": {"median": round(1 - kept["median"], 3),
                                                       "low": round(1 - kept["high"], 3),
                                                       "high": round(1 - kept["low"], 3)},
                                              "met": 1 - kept["median"] <= 0.10})
        batched = rounds.get("tfpipe batched", {})
        if batched.get("rest", {}).get(key) and batched.get("grpc", {}).get(key):
            found["grpc_vs_rest"].append({"concurrency": level,
                                          "throughput_ratio": ratio(batched["grpc"][key], batched["rest"][key]),
                                          "met": ratio(batched["grpc"][key], batched["rest"][key])["median"] >= 1})
    return found


def spread(r: dict) -> str:
    return f"x{r['median']:.2f} [{r['low']:.2f}-{r['high']:.2f}]"


def report(found: dict) -> None:
    for v in found["against_peers"]:
        verdict = "" if v["target"] is None else \
            f" (target x{v['target']:g}{', p99 no worse' if TARGETS[v['peer'], v['concurrency']][1] else ''}: " \
            f"{'met' if v['met'] else 'NOT met'})"
        print(f"{v['protocol']:<4} c={v['concurrency']:<4} {v['tfpipe']} vs {v['peer']}: throughput "
              f"{spread(v['throughput_ratio'])}, p99 {spread(v['p99_ratio'])}{verdict}")
    for v in found["grpc_vs_rest"]:
        print(f"c={v['concurrency']:<4} tfpipe batched, gRPC vs REST: throughput {spread(v['throughput_ratio'])} "
              f"(target x1) {'(met)' if v['met'] else '(NOT met)'}")
    for v in found["logging_cost"]:
        cost = v["cost"]
        print(f"{v['protocol']:<4} c={v['concurrency']:<4} logging at sampling rate 1.0 costs {cost['median']:.1%} "
              f"[{cost['low']:.1%} to {cost['high']:.1%}] of the batched throughput (target <= 10%) "
              f"{'(met)' if v['met'] else '(NOT met)'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--only", default="tfpipe,kserve,pytriton", help="which servers to run")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "h2load") if shutil.which(tool) is None]
    if missing:
        print(f"benchmarks/peers.py: no {' or '.join(missing)} on the PATH; benchmarks/peers/load-generators.sh "
              "installs them (make bench-peers runs it)", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    rounds: dict[str, dict] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        home = bench.make_model(workdir)
        image = np.random.default_rng(0).integers(0, 255, (8, 8, 1)).astype(np.uint8)
        running: list[Contender] = []
        try:
            for contender, start in contenders(home, image, workdir, set(args.only.split(","))):
                running.append(contender)
                try:
                    start()
                    check_answers(contender)
                    for protocol in ("rest", "grpc"):
                        measure(contender, protocol, 4, 1.0, workdir)  # warm-up, not recorded
                except (RuntimeError, OSError, subprocess.CalledProcessError, grpc.RpcError, ValueError) as e:
                    errors[contender.name] = str(e)[:800]
                    print(f"{contender.name}: FAILED: {errors[contender.name]}", flush=True)
                    stop(contender)
            ready = [c for c in running if c.name not in errors]
            for turn in range(args.rounds):
                for level in levels:
                    for contender in ready[turn % len(ready):] + ready[:turn % len(ready)]:
                        if contender.name in errors:
                            continue
                        try:
                            for protocol in ("rest", "grpc"):
                                r = measure(contender, protocol, level, args.seconds, workdir)
                                rounds.setdefault(contender.name, {}).setdefault(protocol, {}).setdefault(
                                    str(level), []).append(r)
                                print(f"round {turn + 1} {contender.name:<28} {protocol:<4} c={level:<4} "
                                      f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                                      f"{r['cpu_ms_per_request']:6.3f} CPU ms/request", flush=True)
                        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                            errors[contender.name] = str(e)[:800]
                            print(f"{contender.name}: FAILED: {errors[contender.name]}", flush=True)
        finally:
            for contender in running:
                stop(contender)
        limit = {f"batch_{b}": round(bench.in_process_limit(home, b, image), 1) for b in (1, MAX_BATCH)}
    rounds = {name: figures for name, figures in rounds.items() if name not in errors}
    results = {name: {protocol: {level: medians(each) for level, each in by_level.items()}
                      for protocol, by_level in figures.items()} for name, figures in rounds.items()}
    print(f"medians of {args.rounds} rounds of {args.seconds:g} s (requests/s: lowest and highest round):")
    for name, figures in results.items():
        for protocol, by_level in figures.items():
            for level, r in by_level.items():
                print(f"{name:<28} {protocol:<4} c={level:<4} {r['rps']:8.0f} req/s [{r['rps_low']:.0f}-"
                      f"{r['rps_high']:.0f}]  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                      f"{r['cpu_ms_per_request']:6.3f} CPU ms/request")
    print(f"in-process limit: {limit['batch_1']:,.0f} rows/s at 1 row per call, {limit[f'batch_{MAX_BATCH}']:,.0f} "
          f"at {MAX_BATCH}")
    found = verdicts(rounds, levels)
    report(found)
    print(json.dumps({"rounds": args.rounds, "seconds": args.seconds, "cores": os.cpu_count(), "batching": {
        "max_batch_size": MAX_BATCH, "batch_timeout_micros": TIMEOUT_MICROS}, "results": results,
        "each_round": rounds, "in_process_rows_per_second": limit, "failed": errors, **found}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
