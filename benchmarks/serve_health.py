"""How fast `/healthz` answers while large request bodies are parsed, against the same server idle.

    .venv/bin/python benchmarks/serve_health.py [--checks 200] [--rows 20000] [--bodies 3]

Trains and exports the chapter's CNN on the bundled digits (as benchmarks/serve.py does) and serves it on a
background thread. It sends `--checks` health checks back to back on one connection, first with nothing else
running, then while `--bodies` clients each post a predict of `--rows` images (about 7.5 MB of JSON at 20,000):
large bodies are parsed off the event loop, so the checks should answer about as fast as when idle. It prints
p50, p95 and the slowest check of both rounds, how many checks were answered while a parse was under way, and
p95 during parses over p95 idle (target: under 100 ms p95 during parses on 2 cores).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import orjson
import serve as bench  # benchmarks/serve.py: the model; it puts the project on the path, quiets TensorFlow

from components.common.config import ServeConfig
from components.serve.server import running


def checks(url: str, count: int, parsing=lambda: False) -> tuple[list[float], int]:
    """`count` health checks' latencies in ms, and how many came while `parsing()` said so before and after."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    latencies, during = [], 0
    for _ in range(count):
        before = parsing()
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        latencies.append((time.perf_counter() - started) * 1000)
        during += before and parsing()
    connection.close()
    return latencies, during


def post(url: str, body: bytes) -> None:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    connection.request("POST", "/v1/models/digits:predict", body=body, headers={"Content-Type": "application/json"})
    if connection.getresponse().status != 200:
        raise RuntimeError("a large predict was not answered 200")
    connection.close()


def summary(latencies: list[float]) -> str:
    every = sorted(latencies)
    return f"p50 {every[len(every) // 2]:6.2f} ms, p95 {every[int(len(every) * 0.95)]:6.2f} ms, " \
           f"slowest {every[-1]:6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--bodies", type=int, default=3)
    args = parser.parse_args()
    images = np.random.default_rng(0).integers(0, 256, (args.rows, 8, 8, 1))
    body = orjson.dumps({"instances": [{"image": image} for image in images.tolist()]})
    with tempfile.TemporaryDirectory() as tmp:
        home = bench.make_model(Path(tmp))
        with running(ServeConfig(model_base=str(home), rest_port=0, grpc_port=0)) as server:
            idle, _ = checks(server.rest_url, args.checks)
            clients = [threading.Thread(target=post, args=(server.rest_url, body)) for _ in range(args.bodies)]
            for client in clients:
                client.start()
            busy, during = checks(server.rest_url, args.checks, lambda: server._service.offload.busy > 0)
            for client in clients:
                client.join()
    print(f"idle:          {summary(idle)}")
    print(f"during parses: {summary(busy)} ({during} of {args.checks} checks answered while a parse ran)")
    p95 = sorted(busy)[int(len(busy) * 0.95)]
    print(f"p95 during parses {p95 / sorted(idle)[int(len(idle) * 0.95)]:.1f}x idle; {p95:.1f} ms "
          f"(target < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
