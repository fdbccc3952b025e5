"""Large requests are parsed off the event loop: /healthz stays quick while they run, the request timeout
bounds them, and the element-wise parser reads what the standard library reads."""

import http.client
import json
import threading
import time
import urllib.parse

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from components.serve import json_body
from components.serve.errors import RequestError
from components.serve.server import running
from tests.components.serve.conftest import config


def post(url: str, path: str, body: bytes, timeout: float = 120) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


def images_body(rows: int) -> bytes:
    images = np.random.default_rng(rows).integers(0, 256, (rows, 8, 8, 1))
    return orjson.dumps({"instances": [{"image": image} for image in images.tolist()]})


def test_healthz_answers_while_large_bodies_are_parsed(digits_home):
    """Large bodies are parsed off the event loop: a health check is answered while a parse is under way (it was
    under way before the check was sent and still after its answer came). How fast it answers is measured in
    benchmarks/serve.py, not here."""
    body = images_body(20000)  # about 7.5 MB of rows
    with running(config(digits_home)) as server:
        service = server._service
        answers, during_parse = [], 0
        threads = [threading.Thread(target=lambda: answers.append(post(server.rest_url, "/v1/models/digits:predict",
                                                                        body))) for _ in range(3)]
        for t in threads:
            t.start()
        parsed = urllib.parse.urlsplit(server.rest_url)
        health = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        while any(t.is_alive() for t in threads):
            parsing = service.offload.busy > 0
            health.request("GET", "/healthz")
            assert health.getresponse().read() == b'{"status": "ok"}'
            during_parse += parsing and service.offload.busy > 0
        health.close()
    assert [status for status, _ in answers] == [200] * 3
    assert all(len(json.loads(answer)["predictions"]) == 20000 for _, answer in answers)
    assert during_parse > 0, "no health check was answered while a large body was being parsed"


def test_a_large_request_past_the_timeout_is_a_504_and_the_server_stays_ready(digits_home):
    """The 15 MB body takes 0.65-0.8 s to parse and score here: a timeout a thirteenth of that always cuts it."""
    with running(config(digits_home, request_timeout_seconds=0.05)) as server:
        status, answer = post(server.rest_url, "/v1/models/digits:predict", images_body(40000))
        assert status == 504
        assert b"longer than the server's 0.05 s timeout" in answer
        service = server._service
        deadline = time.monotonic() + 30
        while service.offload.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.offload.busy == 0  # the abandoned parse stopped, and gave back its slot
        status, _ = post(server.rest_url, "/v1/models/digits:predict", images_body(2))
        assert status == 200


def test_a_bad_large_body_is_a_400_naming_where():
    body = images_body(3000)[:-2] + b"}x"
    with pytest.raises(RequestError, match=r"request body: not valid JSON \(expected ',' or '\]' at character"):
        json_body.parse_large(body, threading.Event())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 80, 2 ** 80) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["instances", "inputs", "signature_name", "x"]), json_values, max_size=3))
def test_the_large_body_parser_reads_what_the_standard_library_reads(body):
    text = json.dumps(body, indent=1).encode()
    assert _plain(json_body.parse_large(text, threading.Event())) == json.loads(text)
    assert _plain(json_body.parse(text)) == json.loads(text)


def _plain(value):
    """numpy arrays (the large parser's compacted elements) back as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
