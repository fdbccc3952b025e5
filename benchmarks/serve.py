"""Serving speed: closed-loop clients against `tfpipe serve`, batching on and off, next to the in-process limit.

    .venv/bin/python benchmarks/serve.py [--seconds 3] [--concurrency 1,8,32,64]
                                         [--max-batch-size 32] [--batch-timeout-micros 3000]

Trains the chapter's CNN on the bundled digits (3 epochs), exports it, and
starts the server in a separate process on 127.0.0.1, once with dynamic
batching and once without. For each protocol (REST, gRPC) and concurrency,
that many clients each send one-image predict requests back to back for
`--seconds`; it prints requests/s, p50 and p99 latency, and the mean rows per
model call the server formed (from its Prometheus metrics, which must also
show no failed request). The in-process limit is the SavedModel called
directly in this process at those batch sizes. Targets at concurrency 32:
batching >= 3x the unbatched requests/s, and >= 50% of the in-process limit.

The load comes from C event loops when they are installed (`apt-get install
wrk nghttp2-client`): wrk for REST (JSON rows) and h2load for gRPC (a
PredictRequest with `tensor_content`, as `tf.make_tensor_proto` writes it),
since Python clients would take half the cores; otherwise from Python threads.
Clients and server share this machine's cores, so the clients' own cost is
inside every figure.

With `--fuzz N` it instead trains the penguins classifier and sends N
property-based fuzzed requests (tests/components/serve/fuzzing.py: REST and
gRPC, valid and not) to a server in a separate process, and prints what the
server answered; it fails at the first 5xx, hang, non-finite or wrong 200.

Batching options: a closed loop never has more requests in flight than its
concurrency, so a `max_batch_size` above 32 would make every batch at
concurrency 32 wait out its timeout. gRPC requests reach the handlers one by
one rather than in a burst, so the timeout must be long enough for a batch to
gather them (1 ms forms ~4 rows per call, 3 ms ~18); lower concurrencies pay
that timeout in latency, as they do with TF Serving's batching.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import struct
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
from tensorflow_serving.apis import predict_pb2  # noqa: E402

from components.serve import announce  # noqa: E402
from components.serve.client import GrpcClient, RestClient  # noqa: E402

PREDICT = "/tensorflow.serving.PredictionService/Predict"


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


def make_penguins(root: Path) -> Path:
    from components.common.config import ExportConfig, IngestConfig, TensorBoardConfig, TrainConfig
    from components.data import write_penguins
    from components.export import run as export
    from components.ingest import run as ingest
    from components.train import run as train

    ingest(IngestConfig(source=str(write_penguins(root / "penguins.csv")), label="species"), str(root / "examples"))
    train(TrainConfig(epochs=8, batch_size=32, learning_rate=0.01, tensorboard=TensorBoardConfig(
        profile_batch=(), histogram_freq=0, write_graph=False)), str(root / "examples"), str(root / "model"))
    export(ExportConfig(model_name="penguins"), str(root / "model"), str(root / "examples"), str(root / "penguins"))
    return root / "penguins"


def fuzz(count: int) -> int:
    from tests.components.serve import fuzzing

    with tempfile.TemporaryDirectory() as tmp:
        home = make_penguins(Path(tmp))
        server = Server(home, True, 32, 2000, "--set", "serve.request_timeout_seconds=10")
        try:
            started = time.perf_counter()
            seen = fuzzing.fuzz(server.rest, server.grpc, home, count, timeout=15)
            seconds = time.perf_counter() - started
        finally:
            server.stop()
    for outcome, n in sorted(seen.items()):
        print(f"{outcome:<40} {n:>6}")
    print(f"{sum(seen.values()):,} cases in {seconds:.0f} s: no 5xx, no hang past the timeout, every 200 finite "
          "and equal to the SavedModel's answer for valid rows; the server stayed ready")
    return 0


class Server:
    def __init__(self, home: Path, batching: bool, max_batch_size: int, timeout_micros: int, *extra: str):
        command = [sys.executable, "-m", "components", "serve", "--model-base", str(home), "--rest-port", "0",
                   "--grpc-port", "0", "--set", f"serve.batching.max_batch_size={max_batch_size}",
                   "--set", f"serve.batching.batch_timeout_micros={timeout_micros}",
                   "--set", "serve.shutdown_delay_seconds=0", *extra]  # no load balancer to wait for
        if batching:
            command.append("--enable-batching")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        listening = announce.wait_for(self.proc, 300, lines)
        if listening is None:
            raise RuntimeError(f"the server did not start: {''.join(lines[-5:])}")
        self.rest, self.grpc = listening.rest_url, listening.grpc_target

    def counts(self) -> tuple[float, float, float]:
        """(model calls, rows, failed requests) so far, from the server's Prometheus metrics."""
        text = urllib.request.urlopen(f"{self.rest}/monitoring/prometheus/metrics").read().decode()
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        values = {s.name: s.value for s in samples}
        failed = sum(s.value for s in samples
                     if s.name == "tfpipe_serve_requests_total" and s.labels["code"] not in ("200", "OK"))
        return values["tfpipe_serve_batch_rows_count"], values["tfpipe_serve_batch_rows_sum"], failed

    def measure(self, load) -> dict:
        """Runs `load()` -> {rps, p50, p99}, and adds the rows per model call it made the server form."""
        calls_before, rows_before, failed_before = self.counts()
        result = load()
        calls, rows, failed = self.counts()
        if failed > failed_before:
            raise RuntimeError(f"the server failed {failed - failed_before:.0f} requests")
        return {**result, "rows_per_call": (rows - rows_before) / max(calls - calls_before, 1)}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def percentiles(latencies_ms: list[float], seconds: float) -> dict:
    every = sorted(latencies_ms)
    return {"rps": len(every) / seconds, "p50": every[len(every) // 2],
            "p99": every[min(len(every) - 1, int(len(every) * 0.99))]}


def python_loop(server: Server, protocol: str, concurrency: int, seconds: float, image: np.ndarray) -> dict:
    """Load from Python client threads (when no C load generator is installed)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    stop = threading.Event()

    def client(i: int) -> None:
        if protocol == "rest":
            rest = RestClient(server.rest, "digits")
            send = lambda: rest.predict(instances=[{"image": image.tolist()}])  # noqa: E731
        else:
            stub = GrpcClient(server.grpc, "digits")
            send = lambda: stub.predict({"image": image[None]})  # noqa: E731
        while not stop.is_set():
            started = time.perf_counter()
            send()
            latencies[i].append(1000 * (time.perf_counter() - started))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return percentiles([x for per in latencies for x in per], seconds)


def wrk_loop(url: str, body: str, concurrency: int, seconds: float, workdir: Path) -> dict:
    """REST load from wrk: `body` POSTed as JSON to `url` on `concurrency` connections."""
    script = workdir / "predict.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    done = subprocess.run(["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency",
                           "-s", str(script), url], capture_output=True, text=True, check=True).stdout

    def millis(label: str) -> float:
        value = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", done)
        return float(value[1]) * {"us": 0.001, "ms": 1, "s": 1000}[value[2]]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    if errors:
        raise RuntimeError(f"wrk saw failed responses:\n{done}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", done)[1]), "p50": millis("50%"),
            "p99": millis("99%")}


def predict_body(image: np.ndarray) -> str:
    """tfpipe's (and TF Serving's) REST predict of one image, in row format."""
    return json.dumps({"instances": [{"image": image.tolist()}]})


def predict_message(image: np.ndarray) -> bytes:
    """tfpipe's (and TF Serving's) gRPC Predict of one image, with `tensor_content` as `tf.make_tensor_proto`
    writes it."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(image[None]))
    return request.SerializeToString()


def h2load_loop(target: str, method: str, message: bytes, concurrency: int, seconds: float, workdir: Path) -> dict:
    """gRPC load from h2load: one framed `message` sent to `method` on `concurrency` HTTP/2 connections, one
    at a time. h2load sees HTTP statuses only, not gRPC's (in trailers): callers check answers separately."""
    body, log = workdir / "request.grpc", workdir / "h2load.log"
    body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)  # gRPC framing: uncompressed, length
    log.unlink(missing_ok=True)  # h2load appends
    done = subprocess.run(["h2load", "-D", f"{seconds:g}", "-c", str(concurrency), "-m", "1", "-t", "1",
                           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body),
                           f"--log-file={log}", f"http://{target}{method}"],
                          capture_output=True, text=True, check=True).stdout
    if not re.search(r" (\d+) succeeded, 0 failed, 0 errored, 0 timeout", done):
        raise RuntimeError(f"h2load saw failed requests:\n{done}")
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    return {**percentiles([int(row[2]) / 1000 for row in rows], seconds),
            "rps": float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", done)[1])}


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
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-micros", type=int, default=3000)
    parser.add_argument("--wrk", action=argparse.BooleanOptionalAction, default=shutil.which("wrk") is not None,
                        help="REST load from wrk (default when installed: apt-get install wrk)")
    parser.add_argument("--h2load", action=argparse.BooleanOptionalAction, default=shutil.which("h2load") is not None,
                        help="gRPC load from h2load (default when installed: apt-get install nghttp2-client)")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N", help="send N fuzzed requests instead")
    args = parser.parse_args()
    if args.fuzz:
        return fuzz(args.fuzz)
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        home = make_model(Path(tmp))
        image = np.random.default_rng(0).integers(0, 255, (8, 8, 1)).astype(np.uint8)
        print(f"batching: max_batch_size {args.max_batch_size}, batch_timeout_micros {args.batch_timeout_micros}; "
              f"REST load from {'wrk' if args.wrk else 'Python threads'}, gRPC load from "
              f"{'h2load' if args.h2load else 'Python threads'}", flush=True)
        results = {}
        for batching in (False, True):
            server = Server(home, batching, args.max_batch_size, args.batch_timeout_micros)
            try:
                for protocol in ("rest", "grpc"):
                    for concurrency in levels:
                        if protocol == "rest" and args.wrk:
                            load = functools.partial(wrk_loop, f"{server.rest}/v1/models/digits:predict",
                                                     predict_body(image), concurrency, args.seconds, Path(tmp))
                        elif protocol == "grpc" and args.h2load:
                            load = functools.partial(h2load_loop, server.grpc, PREDICT, predict_message(image),
                                                     concurrency, args.seconds, Path(tmp))
                        else:
                            load = functools.partial(python_loop, server, protocol, concurrency, args.seconds, image)
                        r = results[(batching, protocol, concurrency)] = server.measure(load)
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
