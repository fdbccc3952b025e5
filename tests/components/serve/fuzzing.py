"""A property-based fuzzer of the model server (hypothesis): REST bodies and gRPC requests, valid and not.

Each case is a valid penguins row, possibly mutated (a value out of its
dtype's range, non-finite, null, a string, nested, an input dropped or
added, the body cut short or not JSON). Whatever it is, the server must not
answer 5xx (or gRPC UNKNOWN / INTERNAL), must answer within its timeout, and
every 200 must be finite and, for an unmutated row, what the SavedModel
called in this process answers. The test suite runs a short profile;
`benchmarks/serve.py --fuzz N` runs N cases.
"""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

from components.serve.client import GrpcClient, RestClient, ServeError

VALID = {"bill_depth_mm": 17.0, "bill_length_mm": 40.0, "body_mass_g": 4000, "flipper_length_mm": 190,
         "island": "Dream", "sex": "male", "year": 2008}
STRINGS = ("island", "sex")
INTS = ("body_mass_g", "flipper_length_mm", "year")
HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e308, -1e39, 2 ** 70, 2 ** 63, -2 ** 63 - 1, -1, 300,
           None, "x", "", True, [], [1.0, 2.0], [[[1]]], {}, {"b64": "!!"}, 0.5]

rows = st.fixed_dictionaries({
    "bill_depth_mm": st.floats(10, 25), "bill_length_mm": st.floats(30, 60), "body_mass_g": st.integers(2500, 6500),
    "flipper_length_mm": st.integers(170, 235), "island": st.sampled_from(["Dream", "Biscoe", "Torgersen", "?"]),
    "sex": st.sampled_from(["male", "female", ""]), "year": st.integers(2007, 2009)})
mutations = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from(sorted(VALID)), st.sampled_from(HOSTILE)),
    st.tuples(st.just("drop"), st.sampled_from(sorted(VALID)), st.none()),
    st.tuples(st.just("add"), st.just("beak"), st.integers())), max_size=2)
cases = st.tuples(st.sampled_from(["rest-rows", "rest-columns", "rest-classify", "rest-raw", "grpc"]),
                  st.lists(st.tuples(rows, mutations), min_size=1, max_size=4), st.binary(max_size=40))


class Reference:
    """The SavedModel in this process: what the server must answer for valid rows."""

    def __init__(self, home):
        self.signature = tf.saved_model.load(str(home / "1")).signatures["serving_default"]
        self.specs = self.signature.structured_input_signature[1]

    def __call__(self, rows: list[dict]) -> np.ndarray:
        columns = {k: tf.constant([r[k] for r in rows], dtype=self.specs[k].dtype) for k in rows[0]}
        return self.signature(**columns)["probabilities"].numpy()


def mutate(row: dict, changes) -> dict:
    row = dict(row)
    for kind, key, value in changes:
        if kind == "drop":
            row.pop(key, None)
        else:
            row[key] = value
    return row


def assert_a_proper_refusal(e: ServeError, api: str, sent: list, valid: bool) -> None:
    """A refusal blames the request (no 5xx, UNKNOWN or INTERNAL), comes before any deadline, and only for
    a request that breaks a rule (or raw garbage)."""
    assert not (isinstance(e.code, int) and e.code >= 500), f"{api} {sent}: {e}"
    assert e.code not in ("UNKNOWN", "INTERNAL"), f"{api} {sent}: {e}"
    assert e.code not in ("DEADLINE_EXCEEDED", 504), f"{api} {sent}: {e}"
    assert not valid or api == "rest-raw", f"a valid request was refused: {api} {sent}: {e}"


def fuzz(rest_url: str, grpc_target: str, home, count: int, timeout: float) -> collections.Counter:
    """Runs `count` cases against a running penguins server; raises AssertionError at the first broken promise."""
    reference, seen = Reference(home), collections.Counter()
    rest, grpc = RestClient(rest_url, "penguins", timeout=timeout), GrpcClient(grpc_target, "penguins",
                                                                                 timeout=timeout)

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cases)
    def one(case):
        api, pairs, garbage = case
        sent = [mutate(row, changes) for row, changes in pairs]
        valid = all(not changes for _, changes in pairs)
        try:
            probabilities = _send(rest, grpc, api, sent, garbage)
        except ServeError as e:
            assert_a_proper_refusal(e, api, sent, valid)
            seen[f"{api} refused {e.code}"] += 1
            return
        assert api != "rest-raw", f"garbage answered 200: {garbage!r}"
        assert np.isfinite(probabilities).all(), f"{api} {sent}: not finite {probabilities}"
        if valid:
            np.testing.assert_allclose(probabilities, reference(sent), atol=1e-5, err_msg=f"{api} {sent}")
        seen[f"{api} 200"] += 1

    try:
        one()
        assert rest.request("GET", "/readyz") == {"ready": True}
    finally:
        rest.close()
        grpc.close()
    return seen


def _send(rest: RestClient, grpc: GrpcClient, api: str, sent: list[dict], garbage: bytes) -> np.ndarray:
    if api == "rest-rows":
        return np.array([p["probabilities"] for p in rest.predict(instances=sent)["predictions"]])
    if api == "rest-columns":
        keys = sorted({k for row in sent for k in row})
        body = {k: [row.get(k) for row in sent] for k in keys}
        return np.array(rest.predict(inputs=body)["outputs"]["probabilities"])
    if api == "rest-classify":
        return np.array([[score for _, score in row] for row in rest.classify(sent)])
    if api == "rest-raw":
        body = json.dumps({"instances": sent}).encode()
        rest.request("POST", "/v1/models/penguins:predict", body[:len(body) // 2] + garbage)
        return np.zeros(0)
    return grpc.predict(_columns(sent))["probabilities"]


def _columns(sent: list[dict]) -> dict[str, np.ndarray]:
    """gRPC tensors as a client would build them; a value numpy cannot hold as the input's dtype keeps its own."""
    columns = {}
    for key in {k for row in sent for k in row}:
        values = [row.get(key) for row in sent]
        dtype = object if key in STRINGS else np.int64 if key in INTS else np.float32
        try:
            column = np.array(values, dtype=dtype)
            if dtype is object:
                column = np.array([str(v).encode() for v in values], dtype=object)
        except (ValueError, TypeError, OverflowError):
            column = np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) and
                               math.isfinite(v) and abs(v) < 1e300 else 0.0 for v in values], dtype=np.float64)
        columns[key] = column
    return columns
