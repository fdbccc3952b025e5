"""What the REST and gRPC front ends share: finding the servable, running it, timing it, counting it.

Errors map to TF Serving's codes: `RequestError` -> 400 / INVALID_ARGUMENT,
`NotFound` -> 404 / NOT_FOUND, `Overloaded` -> 429 / RESOURCE_EXHAUSTED, a
request past its deadline -> 504 / DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from components.common.signatures import PREDICT_METHOD as PREDICT
from components.serve.batching import Batcher
from components.serve.models import ModelManager, NotFound, Servable, Signature
from components.serve.tensors import RequestError


class Timeout(Exception):
    """The request ran past the server's request timeout."""


class Service:
    def __init__(self, manager: ModelManager, batcher: Batcher, timeout_seconds: float,
                 registry: CollectorRegistry):
        self.manager, self.batcher, self.timeout = manager, batcher, timeout_seconds
        self.registry = registry
        self.requests = Counter("tfpipe_serve_requests", "Requests answered", ["protocol", "api", "code"],
                                registry=registry)
        self.latency = Histogram("tfpipe_serve_latency_seconds", "Request latency", ["protocol", "api"],
                                 registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.batch_rows = Histogram("tfpipe_serve_batch_rows", "Rows per model call", registry=registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        batcher.on_batch = self.batch_rows.observe

    def resolve(self, name: str, version: int | None, label: str | None, signature_name: str,
                method: str = PREDICT) -> tuple[Servable, Signature]:
        servable = self.manager.get(name, version, label)
        signature = servable.signature(signature_name)
        if method != PREDICT and signature.method != method:
            wanted = [s.name for s in servable.signatures.values() if s.method == method]
            raise RequestError(f"signature {signature.name!r} is a {signature.method} signature; this API needs "
                               f"a {method} signature{f': {wanted}' if wanted else ', and the model has none'}")
        return servable, signature

    async def run(self, servable: Servable, signature: Signature, inputs: dict[str, np.ndarray]) -> dict:
        try:
            async with asyncio.timeout(self.timeout):  # a deadline on this task, not a task of its own
                return await self.batcher.run(servable, signature, inputs)
        except TimeoutError:
            raise Timeout(f"the request took longer than the server's {self.timeout:g} s timeout") from None

    async def classify(self, servable: Servable, signature: Signature, examples: list[bytes]) -> list:
        """[[(label, score), ...] per example]."""
        outputs = await self.run(servable, signature, {"inputs": np.array(examples, dtype=object)})
        classes, scores = outputs["classes"], outputs["scores"]
        return [[(c.decode("utf-8", "replace"), float(s)) for c, s in zip(row_c, row_s)]
                for row_c, row_s in zip(classes, scores)]

    async def regress(self, servable: Servable, signature: Signature, examples: list[bytes]) -> list[float]:
        outputs = await self.run(servable, signature, {"inputs": np.array(examples, dtype=object)})
        return [float(v) for v in outputs["outputs"].reshape(-1)]

    def observe(self, protocol: str, api: str, code: str, started: float) -> None:
        self.requests.labels(protocol, api, code).inc()
        self.latency.labels(protocol, api).observe(time.perf_counter() - started)


def status(manager: ModelManager, name: str, version: int | None, label: str | None) -> list[tuple[int, str, str]]:
    """(version, state, error message) for one version, or every version the server has seen."""
    manager.check_name(name)
    if label is not None:
        version = manager.get(name, label=label).version
    if version is not None and version not in manager.states:
        raise NotFound(f"Could not find version {version} of model {name!r}")
    versions = [version] if version is not None else sorted(manager.states)
    return [(v, manager.states[v].state, manager.states[v].error) for v in versions]
