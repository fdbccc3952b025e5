"""Serving speed: closed-loop clients against `tfpipe serve`, batching on and off, next to the in-process limit.

    .venv/bin/python benchmarks/serve.py [--seconds 3] [--concurrency 1,8,32,64] [--batch-timeout-micros 1000]

Trains the chapter's CNN on the bundled digits (3 epochs), exports it, and
starts the server in a separate process on 127.0.0.1, once with dynamic
batching (max_batch_size 64, batch_timeout_micros as given) and once without.
For each protocol (REST, gRPC) and concurrency, that many client threads each
send one-image predict requests back to back for `--seconds` (REST load comes
from wrk when it is installed: Python clients would take half the cores); it prints
requests/s, p50 and p99 latency, and the mean rows per model call the server
formed (from its Prometheus metrics). The in-process limit is the SavedModel
called directly in this process at those batch sizes. Targets at concurrency
32: batching >= 3x the unbatched requests/s, and >= 50% of the in-process
limit. Clients and server share this machine's cores, so the clients' own
cost is inside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402  (after the log level is set)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from components.serve.client import GrpcClient, RestClient  # noqa: E402


def make_model(root: Path) -> Path:
    from components.common.config import ExportConfig, IngestConfig, ModelConfig, TensorBoardConfig, TrainConfig
    from components.data import write_digits
    from components.export import run as export
    from components.ingest import run as ingest
    from components.train import run as train

    ingest(IngestConfig(source=str(write_digits(root / "png"))), str(root / "examples"))
    train(TrainConfig(epochs=3, model=ModelConfig(api="sequential"), tensorboard=TensorBoardConfig(profile_batch=())),
          str(root / "examples"), str(root / "model"))
    export(ExportConfig(model_name="digits"), str(root / "model"), str(root / "examples"), str(root / "digits"))
    return root / "digits"


class Server:
    def __init__(self, home: Path, batching: bool, timeout_micros: int):
        command = [sys.executable, "-m", "components", "serve", "--model-base", str(home), "--rest-port", "0",
                   "--grpc-port", "0", "--set", "serve.batching.max_batch_size=64",
                   "--set", f"serve.batching.batch_timeout_micros={timeout_micros}"]
        if batching:
            command.append("--enable-batching")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.proc.stdout:
            match = re.search(r"REST (http://\S+), gRPC (\S+) \(", line)
            if match:
                self.rest, self.grpc = match[1], match[2]
                break
        else:
            raise RuntimeError("the server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def rows_per_call(self) -> tuple[float, float]:
        """(model calls, rows) so far, from the server's Prometheus metrics."""
        text = urllib.request.urlopen(f"{self.rest}/monitoring/prometheus/metrics").read().decode()
        values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        return values["tfpipe_serve_batch_rows_count"], values["tfpipe_serve_batch_rows_sum"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def closed_loop(server: Server, protocol: str, concurrency: int, seconds: float, image: np.ndarray) -> dict:
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    stop = threading.Event()
    body = {"instances": [{"image": image.tolist()}]}

    def client(i: int) -> None:
        if protocol == "rest":
            rest = RestClient(server.rest, "digits")
            send = lambda: rest.predict(**body)  # noqa: E731
        else:
            stub = GrpcClient(server.grpc, "digits")
            send = lambda: stub.predict({"image": image[None]})  # noqa: E731
        while not stop.is_set():
            started = time.perf_counter()
            send()
            latencies[i].append(time.perf_counter() - started)

    calls_before, rows_before = server.rows_per_call()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    calls, rows = server.rows_per_call()
    every = sorted(x for per in latencies for x in per)
    return {"rps": len(every) / seconds, "p50": 1000 * every[len(every) // 2],
            "p99": 1000 * every[min(len(every) - 1, int(len(every) * 0.99))],
            "rows_per_call": (rows - rows_before) / max(calls - calls_before, 1)}


def wrk_loop(server: Server, concurrency: int, seconds: float, image: np.ndarray, workdir: Path) -> dict:
    """REST load from wrk (a C event loop, so the load generator takes little of the cores)."""
    script = workdir / "predict.lua"
    body = json.dumps({"instances": [{"image": image.tolist()}]})
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    calls_before, rows_before = server.rows_per_call()
    done = subprocess.run(["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency",
                           "-s", str(script), f"{server.rest}/v1/models/digits:predict"],
                          capture_output=True, text=True, check=True).stdout
    calls, rows = server.rows_per_call()

    def millis(label: str) -> float:
        value = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", done)
        return float(value[1]) * {"us": 0.001, "ms": 1, "s": 1000}[value[2]]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    if errors:
        raise RuntimeError(f"wrk saw {errors[1]} failed responses:\n{done}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", done)[1]), "p50": millis("50%"),
            "p99": millis("99%"), "rows_per_call": (rows - rows_before) / max(calls - calls_before, 1)}


def in_process_limit(home: Path, batch: int, image: np.ndarray, seconds: float = 2.0) -> float:
    """Requests/s if every request were one row of a model call at `batch` rows, with no server at all."""
    signature = tf.saved_model.load(str(home / "1")).signatures["serving_default"]
    images = tf.constant(np.repeat(image[None], batch, axis=0))
    signature(image=images)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        signature(image=images)
        calls += 1
    return calls * batch / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--batch-timeout-micros", type=int, default=1000)
    parser.add_argument("--wrk", action=argparse.BooleanOptionalAction, default=shutil.which("wrk") is not None,
                        help="REST load from wrk (default when installed: apt-get install wrk)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        home = make_model(Path(tmp))
        image = np.asarray(json.loads(json.dumps(np.random.default_rng(0).integers(0, 255, (8, 8, 1)).tolist())),
                           dtype=np.uint8)
        results = {}
        for batching in (False, True):
            server = Server(home, batching, args.batch_timeout_micros)
            try:
                for protocol in ("rest", "grpc"):
                    for concurrency in levels:
                        r = wrk_loop(server, concurrency, args.seconds, image, Path(tmp)) \
                            if protocol == "rest" and args.wrk else \
                            closed_loop(server, protocol, concurrency, args.seconds, image)
                        results[(batching, protocol, concurrency)] = r
                        print(f"batching {'on ' if batching else 'off'} {protocol:<4} concurrency {concurrency:>2}: "
                              f"{r['rps']:7.0f} requests/s, p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms, "
                              f"{r['rows_per_call']:5.1f} rows per model call", flush=True)
            finally:
                server.stop()
        if 32 in levels:
            for protocol in ("rest", "grpc"):
                on, off = results[(True, protocol, 32)], results[(False, protocol, 32)]
                limit = in_process_limit(home, max(1, round(on["rows_per_call"])), image)
                print(f"{protocol} at concurrency 32: batching {on['rps'] / off['rps']:.2f}x unbatched "
                      f"(target >= 3); {on['rps'] / limit:.0%} of the in-process limit {limit:,.0f}/s at "
                      f"{on['rows_per_call']:.0f} rows per call (target >= 50%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
