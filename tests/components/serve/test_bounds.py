"""Clients are bounded: a stall is a 408 (never a 5xx), a body declared too large a 413 before it is read, idle
connections close, connections past the cap are refused at once, the cap fits the descriptor limit. Raw sockets,
so that each case sends exactly the bytes it names; socket timeouts are hang guards only."""

import json
import resource
import socket
import threading
import time

import grpc
import pytest
from tensorflow_serving.apis.prediction_service_pb2_grpc import PredictionServiceStub

from components.common.config import ConfigError, ServeConfig
from components.serve.server import ModelServer, StartError, connection_limit, running
from tests.components.serve.conftest import config
from tests.components.serve.test_rest import VALID
from tests.components.serve.test_shutdown import predict_request

HANG_GUARD = 60
PREDICT = b"POST /v1/models/penguins:predict HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture(scope="module")
def server(penguins_home):
    with running(config(penguins_home, header_timeout_seconds=0.5, body_timeout_seconds=0.5,
                        idle_timeout_seconds=1.0, max_request_bytes=4096)) as server:
        yield server


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.rest_port), timeout=HANG_GUARD)


def answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    client.close()
    return data


def status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("sent", [
    b"POST /v1/models/penguins:pre",  # half a request line
    PREDICT + b"Content-Type: application/json\r\n",  # headers without their end
    PREDICT + b"Content-Length: 100\r\n\r\n{\"instances\": ",  # a body shorter than declared
    PREDICT + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"ins\r\n",  # chunks that never end
], ids=["request-line", "headers", "short-body", "endless-chunks"])
def test_a_client_that_stalls_gets_408_and_is_closed(server, sent):
    client = connect(server)
    client.sendall(sent)
    data = answer(client)
    assert status(data) == 408, data
    assert b'"error"' in data


def test_a_body_declared_too_large_gets_413_before_it_is_sent(server):
    client = connect(server)
    client.sendall(PREDICT + b"Content-Length: 999999999\r\n\r\n")
    data = answer(client)  # nothing of the body was sent: the answer cannot have waited for it
    assert status(data) == 413
    assert b"999999999 bytes declared" in data


def test_an_idle_connection_is_closed_and_a_kept_one_still_serves(server):
    idle = connect(server)
    assert answer(idle) == b""  # closed without a word: it never asked anything
    kept = connect(server)
    body = json.dumps({"instances": [VALID]}).encode()
    kept.sendall(PREDICT + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    answered = kept.recv(65536)
    assert status(answered) == 200
    assert b"Connection: close" not in answered  # answered, then kept open until idle
    assert answer(kept) == b""


def test_an_idle_grpc_connection_is_sent_away(server):
    channel = grpc.insecure_channel(server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
    states, idle = [], threading.Event()

    def seen(state):
        states.append(state)
        if state == grpc.ChannelConnectivity.IDLE and grpc.ChannelConnectivity.READY in states:
            idle.set()  # READY, then IDLE: the server's GOAWAY (the channel's own idle timer is 30 minutes)

    channel.subscribe(seen)
    PredictionServiceStub(channel).Predict(predict_request(), timeout=HANG_GUARD)
    assert idle.wait(HANG_GUARD), states
    channel.close()


def test_connections_past_the_cap_are_refused_at_once(penguins_home):
    with running(config(penguins_home, max_connections=3)) as server:
        held = [connect(server) for _ in range(3)]
        for client in held:  # each is served, so all three are open on the server's side
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status(client.recv(65536)) == 200
        refused = answer(connect(server))
        assert status(refused) == 503
        assert b"3 connections open" in refused
        held.pop().close()
        deadline = time.monotonic() + HANG_GUARD
        while True:  # the server sees the close a moment later; then there is room again
            client = connect(server)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if status(answer(client)) == 200:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Each channel on a connection of its own (channels in one process otherwise share one).
        channels = [grpc.insecure_channel(server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(4)]
        outcomes = []
        for channel in channels:
            try:
                PredictionServiceStub(channel).Predict(predict_request(), timeout=HANG_GUARD)
                outcomes.append("OK")
            except grpc.RpcError as e:
                outcomes.append(e.code())
        assert outcomes == ["OK"] * 3 + [grpc.StatusCode.UNAVAILABLE]
        for channel in channels:
            channel.close()


def test_the_connection_cap_fits_the_descriptor_limit(penguins_home):
    limit = connection_limit(0)  # raises the soft descriptor limit to the hard one first
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 0 < limit < soft // 2
    with pytest.raises(StartError, match="descriptor limit"):
        ModelServer(config(penguins_home, max_connections=soft))


def test_shutdown_and_client_settings_are_checked():
    with pytest.raises(ConfigError, match="shutdown_grace_seconds"):
        ServeConfig(shutdown_delay_seconds=10, shutdown_grace_seconds=11).validate()
    with pytest.raises(ConfigError, match="header_timeout_seconds"):
        ServeConfig(header_timeout_seconds=0).validate()
