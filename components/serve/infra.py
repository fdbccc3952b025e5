"""The infra check, in the role of TFX's InfraValidator: does the exported version really serve?

It starts the model server on that one version in a separate process (as a
deployment would), waits for the version to be AVAILABLE, sends canary
requests built from test examples over REST (`:predict` on the
`predict_examples` signature, examples as `{"b64": ...}`) and over gRPC
(Classify or Regress), compares every answer with the SavedModel run in this
process, and records the latency. `infra_blessing.json` says whether it
passed, and why not when it did not; deployment happens only if it passed.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from components.common import agreement, io, reader
from components.common.evaluation_records import Check, CheckKind
from components.serve import announce
from components.serve.client import GrpcClient, RestClient, ServeError

CANARIES = 8


@dataclass
class InfraResult:
    """infra_blessing.json. Each check is the gate's (components.common.evaluation_records.Check): the version's
    status ("available"), each canary's largest difference from the SavedModel's answer against the tolerance
    ("max_difference"), or canaries that were not answered ("answered")."""

    blessed: bool
    reason: str
    version: int
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"blessed": self.blessed, "reason": self.reason, "version": self.version,
                "checks": [c.to_json() for c in self.checks], "latency_ms": dict(self.latency_ms)}


def check(home: str, version: int, examples: str, out: str, timeout_seconds: float = 180) -> InfraResult:
    """Serves `<home>/<version>` in a subprocess and checks it; writes `<out>/infra_blessing.json`."""
    name = Path(home).name
    result = InfraResult(False, "", version)
    serialized = _canaries(examples)
    try:
        expected = _expected(Path(home) / str(version), serialized)
    except (OSError, ValueError, IndexError, tf.errors.OpError) as e:  # IndexError: truncated variables
        result.reason = f"{home}/{version}: the SavedModel does not load or run: {str(e).splitlines()[0][:300]}"
        return _write(result, out)
    command = [sys.executable, "-m", "components", "serve", "--model-base", home, "--model-name", name,
               "--rest-port", "0", "--grpc-port", "0", "--set", "serve.version_policy=specific",
               "--set", f"serve.versions=[{version}]", "--set", "serve.shutdown_delay_seconds=0"]
    # No load balancer sends to it: on SIGTERM it stops without the shutdown delay.
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines: list[str] = []
    try:
        listening = announce.wait_for(server, timeout_seconds, lines)
        if listening is None:
            result.reason = f"the server did not start within {timeout_seconds:g} s: {_tail(lines)}"
        else:
            _run_canaries(result, name, listening, serialized, expected)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    return _write(result, out)


def _write(result: InfraResult, out: str) -> InfraResult:
    io.makedirs(out)
    io.write_json(f"{out}/infra_blessing.json", result.to_json())
    return result


def _canaries(examples: str) -> list[bytes]:
    files = reader.files_of(examples, "test")
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(CANARIES)]


def _expected(version_dir: Path, serialized: list[bytes]) -> dict[str, np.ndarray]:
    loaded = tf.saved_model.load(str(version_dir))
    outputs = loaded.signatures["predict_examples"](inputs=tf.constant(serialized))
    return {k: v.numpy() for k, v in outputs.items()}


def _run_canaries(result: InfraResult, name: str, listening: announce.Listening, serialized: list[bytes],
                  expected: dict[str, np.ndarray]) -> None:
    rest, grpc_client = RestClient(listening.rest_url, name), GrpcClient(listening.grpc_target, name)
    timings: dict[str, list[float]] = {"rest": [], "grpc": []}
    try:
        # The version under check, by number: the server also loads the versions the registry's labels name.
        version = result.version
        state = rest.status(version=version)["model_version_status"][0]
        result.checks.append(_outcome("status", "available", state["state"] == "AVAILABLE",
                                      f"version {state['version']} {state['state']}"))
        classifier = "probabilities" in expected
        reference = expected["probabilities" if classifier else "predictions"]
        for i, example in enumerate(serialized):
            started = time.perf_counter()
            answer = rest.predict(instances=[{"b64": base64.b64encode(example).decode()}],
                                  signature="predict_examples", version=version)["predictions"][0]
            timings["rest"].append(time.perf_counter() - started)
            got = np.asarray(answer["probabilities"] if classifier else answer["predictions"])
            _compare(result, f"rest predict canary {i}", got, reference[i])
            started = time.perf_counter()
            if classifier:
                got = np.array([score for _, score in grpc_client.classify([example], version=version)[0]])
            else:
                got = np.array(grpc_client.regress([example], version=version))
            timings["grpc"].append(time.perf_counter() - started)
            _compare(result, f"grpc {'classify' if classifier else 'regress'} canary {i}", got, reference[i])
    except (ServeError, OSError, KeyError, json.JSONDecodeError) as e:
        result.checks.append(_outcome("canary requests", "answered", False, str(e)))
    finally:
        rest.close()
        grpc_client.close()
    result.latency_ms = {f"{protocol}_{stat}": round(1000 * fn(values), 3)
                         for protocol, values in timings.items() if values
                         for stat, fn in (("p50", statistics.median), ("max", max))}
    failed = [c for c in result.checks if not c.passed]
    result.blessed = not failed and len(result.checks) > 1
    result.reason = "every canary answered as the SavedModel does" if result.blessed else \
        "; ".join(f"{c.metric}: {c.reason}" for c in failed[:3])


def _outcome(what: str, kind: CheckKind, passed: bool, reason: str) -> Check:
    return Check(what, kind, None, None, None, "pass" if passed else "fail", reason)


def _compare(result: InfraResult, what: str, got: np.ndarray, want: np.ndarray) -> None:
    difference = agreement.max_difference(got, want)
    result.checks.append(Check(what, "max_difference", agreement.TOLERANCE, difference, None,
                               "pass" if agreement.agrees(difference) else "fail",
                               f"max difference {difference:.2g} (tolerance {agreement.TOLERANCE})"))


def _tail(lines: list[str]) -> str:
    return " | ".join(line.strip() for line in lines[-3:]) or "no output"
