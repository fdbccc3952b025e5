"""Graceful shutdown of `python -m components serve`, a real process sent real signals: under load on both
protocols no request is cut and every answered request's record is on disk under a final name; requests still
running at the end of the drain are answered 503 / UNAVAILABLE; SIGINT works where the shell ignored it; a
second signal exits at once. Deadlines here are hang guards, far above what any step takes."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components.serve import announce
from components.serve.tensors import to_proto
from tests.components.serve.test_grpc import columns
from tests.components.serve.test_request_log import read_logs
from tests.components.serve.test_rest import VALID
from tests.conftest import ROOT

HANG_GUARD = 120  # seconds; no step here comes near it
PROBE = Path(__file__).with_name("shutdown_probe.py")
PREDICT = "/v1/models/penguins:predict"
BODY = json.dumps({"instances": [VALID]}).encode()


class Server:
    """`python -m components serve` in a subprocess with `settings` (serve.* keys), its announcement read. With
    `delay_until_told`, the same server run by shutdown_probe.py: its shutdown delay lasts until `end_delay()`."""

    def __init__(self, home, settings: dict, ignore_sigint: bool = False, delay_until_told: bool = False):
        settings = {"model_base": home, "rest_port": 0, "grpc_port": 0, **settings}
        if delay_until_told:
            command = [sys.executable, str(PROBE), *[f"serve.{key}={value}" for key, value in settings.items()]]
        else:
            command = [sys.executable, "-m", "components", "serve"]
            for key, value in settings.items():
                command += ["--set", f"serve.{key}={value}"]
        # A job started with `&` from a script starts with SIGINT ignored.
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        stdin=subprocess.PIPE if delay_until_told else None, cwd=ROOT,
                                        preexec_fn=preexec, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        self.lines: list[str] = []
        self.listening = announce.wait_for(self.process, HANG_GUARD, self.lines)
        assert self.listening is not None, "".join(self.lines)
        host, port = self.listening.rest_url.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def end_delay(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.close()

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("the server did not exit:\n" + "".join(self.lines)) from None

    def ready(self) -> int:
        connection = http.client.HTTPConnection(*self.address, timeout=HANG_GUARD)
        connection.request("GET", "/readyz")
        status = connection.getresponse().status
        connection.close()
        return status

    def wait_until_draining(self) -> None:
        deadline = time.monotonic() + HANG_GUARD
        while self.ready() != 503:
            assert time.monotonic() < deadline, "readiness never answered 503"
            time.sleep(0.02)

    def rest_predict(self) -> tuple[int, str | None]:
        """One predict on a new connection; its HTTP status and Connection header."""
        connection = http.client.HTTPConnection(*self.address, timeout=HANG_GUARD)
        connection.request("POST", PREDICT, BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        connection.close()
        return response.status, response.getheader("Connection")

    def stub(self):
        channel = grpc.insecure_channel(self.listening.grpc_target)
        return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguins"
    for name, value in columns([VALID]).items():
        request.inputs[name].CopyFrom(to_proto(value))
    return request


@pytest.fixture(scope="module")
def sent():
    return predict_request()


@pytest.mark.parametrize("batching", ["true", "false"], ids=["batched", "unbatched"])
def test_sigterm_under_load_cuts_no_request_and_every_answer_is_logged(tmp_path, penguins_home, sent, batching):
    logs = tmp_path / "logs"
    server = Server(penguins_home, {"shutdown_grace_seconds": HANG_GUARD, "batching.enabled": batching,
                                    "logging.sampling_rate": 1.0, "logging.dir": str(logs)}, delay_until_told=True)
    removed = threading.Event()  # the load balancer has taken the server out: clients send nothing new
    outcomes: dict[str, list] = {"rest": [], "grpc": []}
    started = threading.Barrier(9)

    def rest_client():
        connection = http.client.HTTPConnection(*server.address, timeout=HANG_GUARD)
        started.wait()
        while not removed.is_set():
            try:  # keep-alive; an answer that says Connection: close makes http.client reconnect
                connection.request("POST", PREDICT, BODY, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                outcomes["rest"].append(response.status)
            except OSError as e:  # reset, closed without an answer, refused: a cut request
                outcomes["rest"].append(repr(e))
                connection.close()
        connection.close()

    def grpc_client():
        channel, stub = server.stub()
        started.wait()
        while not removed.is_set():
            try:
                stub.Predict(sent, timeout=HANG_GUARD)
                outcomes["grpc"].append("OK")
            except grpc.RpcError as e:
                outcomes["grpc"].append(f"{e.code().name}: {e.details()}")
        channel.close()

    clients = [threading.Thread(target=rest_client) for _ in range(4)] + \
        [threading.Thread(target=grpc_client) for _ in range(4)]
    for client in clients:
        client.start()
    started.wait()
    deadline = time.monotonic() + HANG_GUARD
    while min(len(outcomes["rest"]), len(outcomes["grpc"])) < 50:  # busy on both protocols
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.signal(signal.SIGTERM)
    server.wait_until_draining()
    # Within the delay (readiness already says 503): a new connection and a new channel's RPC are answered.
    late_rest = server.rest_predict()
    channel, stub = server.stub()
    late_grpc = stub.Predict(sent, timeout=HANG_GUARD)
    channel.close()
    removed.set()
    for client in clients:
        client.join(timeout=HANG_GUARD)
    server.end_delay()
    assert server.wait() == 0, "".join(server.lines)

    assert late_rest == (200, "close")  # draining, answers end their connection
    assert late_grpc.outputs
    assert set(outcomes["rest"]) == {200}, [o for o in outcomes["rest"] if o != 200][:5]
    assert set(outcomes["grpc"]) == {"OK"}, [o for o in outcomes["grpc"] if o != "OK"][:5]
    assert not [p.name for p in logs.iterdir() if p.name.startswith(".")], "an unfinished log file is left"
    records = read_logs(logs)
    assert len(records) == len(outcomes["rest"]) + len(outcomes["grpc"]) + 2


def test_what_runs_past_the_drain_is_answered_503_and_sigint_works_where_the_shell_ignored_it(penguins_home,
                                                                                               sent):
    # A 600 s batch timeout keeps a lone request waiting in its batch: in flight until the drain ends it.
    # Client timeouts far past the test: the stalled connections are still being read when the drain ends.
    server = Server(penguins_home, {"shutdown_delay_seconds": 0.5, "shutdown_grace_seconds": 4,
                                    "request_timeout_seconds": 600, "header_timeout_seconds": 600,
                                    "body_timeout_seconds": 600, "batching.enabled": "true",
                                    "batching.batch_timeout_micros": 600_000_000}, ignore_sigint=True)
    answers: dict[str, object] = {}

    def rest_waiting():
        connection = http.client.HTTPConnection(*server.address, timeout=HANG_GUARD)
        connection.request("POST", PREDICT, BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answers["rest"] = response.status, json.loads(response.read())["error"]

    def grpc_waiting():
        channel, stub = server.stub()
        try:
            stub.Predict(sent, timeout=HANG_GUARD)
            answers["grpc"] = "OK"
        except grpc.RpcError as e:
            answers["grpc"] = e.code()
        channel.close()

    def stalled(request: bytes) -> socket.socket:
        client = socket.create_connection(server.address, timeout=HANG_GUARD)
        client.sendall(request)
        return client

    half_headers = stalled(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\n")
    half_body = stalled(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    waiting = [threading.Thread(target=rest_waiting), threading.Thread(target=grpc_waiting)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + HANG_GUARD
    while in_flight(server) < 3:  # both predicts wait in their batch, the half body is being read
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.signal(signal.SIGINT)
    assert server.wait() == 0, "".join(server.lines)
    for thread in waiting:
        thread.join(timeout=HANG_GUARD)

    assert answers["rest"][0] == 503
    assert "shutting down" in answers["rest"][1]
    assert answers["grpc"] == grpc.StatusCode.UNAVAILABLE
    for client in (half_headers, half_body):
        assert read_all(client).startswith(b"HTTP/1.1 503 ")


def test_a_second_signal_exits_at_once(penguins_home):
    server = Server(penguins_home, {"shutdown_delay_seconds": 600, "shutdown_grace_seconds": 900})
    server.signal(signal.SIGTERM)
    server.wait_until_draining()
    server.signal(signal.SIGTERM)
    assert server.wait() == 128 + signal.SIGTERM


@pytest.mark.docker
def test_in_the_component_image_sigterm_reaches_the_server_as_pid_1(tmp_path, penguins_home):
    """`docker stop` sends SIGTERM to PID 1, which the kernel delivers only to a handler: the server drains,
    publishes its request log and exits 0 (not SIGKILLed at the stop timeout: 137)."""
    import docker

    image = os.environ.get("TFPIPE_IMAGE", "tfpipe-components:latest")
    try:
        engine = docker.from_env()
        engine.images.get(image)
    except docker.errors.DockerException as e:
        pytest.fail(f"needs a Docker engine and the {image} image: run `make host` (tests/setup-host.sh): {e}")
    logs = tmp_path / "logs"
    logs.mkdir()
    container = engine.containers.run(
        image, ["python", "-m", "components", "serve", "--model-base", "/models/penguins", "--log-sampling-rate",
                "1", "--log-dir", "/logs", "--set", "serve.shutdown_delay_seconds=1"],
        detach=True, network_mode="none", user=f"{os.getuid()}:{os.getgid()}", environment={"HOME": "/tmp"},
        volumes={str(penguins_home): {"bind": "/models/penguins", "mode": "ro"},
                 str(logs): {"bind": "/logs", "mode": "rw"}})
    try:
        deadline = time.monotonic() + HANG_GUARD
        while announce.KEY.encode() not in container.logs():
            assert time.monotonic() < deadline, container.logs().decode()
            container.reload()
            assert container.status == "running", container.logs().decode()
            time.sleep(0.2)
        send = ("import urllib.request, sys; [urllib.request.urlopen(urllib.request.Request("
                f"'http://127.0.0.1:8501{PREDICT}', data=sys.argv[1].encode())) for _ in range(3)]")
        assert container.exec_run(["python", "-c", send, BODY.decode()]).exit_code == 0
        container.stop(timeout=HANG_GUARD)
        exit_code, output = container.wait(timeout=HANG_GUARD)["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)
        engine.close()
    assert exit_code == 0, output
    assert "SIGTERM received" in output, output
    assert len(read_logs(logs)) == 3
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]


def in_flight(server: Server) -> float:
    connection = http.client.HTTPConnection(*server.address, timeout=HANG_GUARD)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "tfpipe_serve_requests_in_flight")


def read_all(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    client.close()
    return data

