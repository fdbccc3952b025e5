"""`tfpipe serve` stopped with SIGTERM under load, every request logged: what the clients got, what reached disk.

    .venv/bin/python benchmarks/serve_shutdown.py [--clients 48] [--seconds 4]

Trains and exports the chapter's CNN on the bundled digits (as benchmarks/serve.py does), starts the server in
a separate process with batching and request logging at sampling rate 1.0, and runs `--clients` client threads,
half REST (one keep-alive connection each) and half gRPC, each sending one-image predicts back to back. After
`--seconds` it sends SIGTERM, twice over: once with clients that stop sending when `/readyz` answers 503 (what
a load balancer does), once with clients that never stop. For each it prints the exit status and the seconds
from SIGTERM to exit, the requests answered, refused before they were sent (a connection refused, gRPC's
UNAVAILABLE), and cut (reset or closed without an answer, gRPC's CANCELLED), per protocol, and the request
log's records in files under their final names (which must equal the requests answered) and any unfinished
hidden file.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import serve as bench  # benchmarks/serve.py: the model; it puts the project on the path, quiets TensorFlow
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components.serve import announce


def run(home: Path, logs: Path, clients: int, seconds: float, balanced: bool) -> dict:
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 1)).astype(np.uint8)
    body = json.dumps({"instances": [{"image": image.tolist()}]}).encode()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = home.name
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(image[None]))
    command = [sys.executable, "-m", "components", "serve", "--model-base", str(home), "--rest-port", "0",
               "--grpc-port", "0", "--enable-batching", "--log-sampling-rate", "1", "--log-dir", str(logs)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    listening = announce.wait_for(server, 300, lines)
    if listening is None:
        raise RuntimeError(f"the server did not start: {''.join(lines[-5:])}")
    host, port = listening.rest_url.removeprefix("http://").split(":")
    seen: collections.Counter = collections.Counter()
    lock, stop, removed = threading.Lock(), threading.Event(), threading.Event()

    def count(outcome: str) -> None:
        with lock:
            seen[outcome] += 1

    def rest_client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        while not stop.is_set() and not (balanced and removed.is_set()):
            try:
                connection.request("POST", f"/v1/models/{home.name}:predict", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                count("rest answered" if response.status == 200 else f"rest {response.status}")
            except ConnectionRefusedError:
                count("rest refused")
                connection.close()
                time.sleep(0.05)
            except OSError:
                count("rest cut")
                connection.close()
        connection.close()

    def grpc_client() -> None:
        channel = grpc.insecure_channel(listening.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set() and not (balanced and removed.is_set()):
            try:
                stub.Predict(request, timeout=60)
                count("grpc answered")
            except grpc.RpcError as e:
                count({grpc.StatusCode.UNAVAILABLE: "grpc refused", grpc.StatusCode.CANCELLED: "grpc cut"}.get(
                    e.code(), f"grpc {e.code().name}"))
                time.sleep(0.05)
        channel.close()

    def balancer() -> None:
        while not stop.is_set():
            try:
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 503:
                    removed.set()
                    return
                connection.close()
            except OSError:
                pass
            time.sleep(0.02)

    threads = [threading.Thread(target=rest_client) for _ in range(clients // 2)] + \
        [threading.Thread(target=grpc_client) for _ in range(clients - clients // 2)] + \
        [threading.Thread(target=balancer)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    signalled = time.monotonic()
    server.send_signal(signal.SIGTERM)
    status = server.wait(timeout=120)
    took = time.monotonic() - signalled
    time.sleep(0.5)  # the clients see that the server is gone
    stop.set()
    for thread in threads:
        thread.join()
    names = sorted(os.listdir(logs))
    published = [str(logs / n) for n in names if not n.startswith(".")]
    records = sum(1 for _ in tf.data.TFRecordDataset(published)) if published else 0
    return {"exit_status": status, "seconds_to_exit": round(took, 2), **dict(seen), "records_on_disk": records,
            "unfinished_files": [n for n in names if n.startswith(".")]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        home = bench.make_model(workdir)
        for name, balanced in (("behind a balancer", True), ("clients never stop", False)):
            result = results[name] = run(home, workdir / name.replace(" ", "-"), args.clients, args.seconds,
                                         balanced)
            counts = "; ".join(f"{protocol} answered {result.get(f'{protocol} answered', 0):,}, refused "
                               f"{result.get(f'{protocol} refused', 0):,}, cut {result.get(f'{protocol} cut', 0):,}"
                               for protocol in ("rest", "grpc"))
            print(f"{name:<20} exit {result['exit_status']} after {result['seconds_to_exit']:.1f} s; {counts}; "
                  f"{result['records_on_disk']:,} records on disk, unfinished files: {result['unfinished_files']}",
                  flush=True)
    print(json.dumps({"clients": args.clients, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
