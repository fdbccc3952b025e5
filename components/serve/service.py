"""What the REST and gRPC front ends share: finding the servable, running it, timing it, counting it.

Errors map to TF Serving's codes (components.serve.errors): a bad request ->
400 / INVALID_ARGUMENT, no such model -> 404 / NOT_FOUND, a full queue -> 429
/ RESOURCE_EXHAUSTED, a request past its deadline -> 504 / DEADLINE_EXCEEDED,
a body too slow to arrive -> 408, one over the size limit -> 413, a request
the stopping server could not finish -> 503 / UNAVAILABLE.
The request timeout covers the server's part of a request: parsing, the
model call and writing the answer. Reading a REST body has a deadline of its
own (408 past it: a stall is the client's). When the server stops, `expire`
brings every deadline forward: what still runs is answered 503 / UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from components.common.signatures import PREDICT_METHOD as PREDICT
from components.serve import values
from components.serve.batching import Batcher
from components.serve.errors import ClientTimeout, NotFound, RequestError, ShuttingDown, Timeout
from components.serve.models import ModelManager, Servable, Signature
from components.serve.offload import Offload

if TYPE_CHECKING:  # request_log builds its records with this module's answers
    from components.serve.request_log import RequestLog

NEVER = threading.Event()  # the `cancelled` of work done inline: never set
# One thread: parsing holds the interpreter, so a second one only adds contention for the event loop.
OFFLOAD_THREADS, OFFLOAD_LIMIT = 1, 8


class Service:
    def __init__(self, manager: ModelManager, batcher: Batcher, timeout_seconds: float, registry: CollectorRegistry,
                 allow_non_finite: bool = False, max_request_bytes: int = 16 << 20,
                 request_log: RequestLog | None = None, body_timeout_seconds: float = 30.0):
        self.manager, self.batcher, self.timeout = manager, batcher, timeout_seconds
        self.body_timeout = body_timeout_seconds
        self.draining = False  # stopping: readiness answers 503, REST answers close their connection
        self.stopping = False  # past the drain: every deadline has expired, and new ones expire at once
        self.deadlines: set[asyncio.Timeout] = set()  # those of the requests in flight
        self.request_log = request_log  # None when logging is off: the front ends then skip it with one test
        self.allow_non_finite, self.max_request_bytes = allow_non_finite, max_request_bytes
        self.offload = Offload(OFFLOAD_THREADS, OFFLOAD_LIMIT)
        self.registry = registry
        self.requests = Counter("tfpipe_serve_requests", "Requests answered", ["protocol", "api", "code"],
                                registry=registry)
        self.latency = Histogram("tfpipe_serve_latency_seconds", "Request latency", ["protocol", "api"],
                                 registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.batch_rows = Histogram("tfpipe_serve_batch_rows", "Rows per model call", registry=registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        batcher.on_batch = self.batch_rows.observe
        Gauge("tfpipe_serve_requests_in_flight", "Requests whose body is being read or whose answer is being worked "
              "on", registry=registry).set_function(lambda: len(self.deadlines))
        Gauge("tfpipe_serve_batch_queued_rows", "Rows waiting in the batching queues for a model call",
              registry=registry).set_function(batcher.queued_rows)

    def resolve(self, name: str, version: int | None, label: str | None, signature_name: str,
                method: str = PREDICT) -> tuple[Servable, Signature]:
        servable = self.manager.get(name, version, label)
        signature = servable.signature(signature_name)
        if method != PREDICT and signature.method != method:
            wanted = [s.name for s in servable.signatures.values() if s.method == method]
            raise RequestError(f"signature {signature.name!r} is a {signature.method} signature; this API needs "
                               f"a {method} signature{f': {wanted}' if wanted else ', and the model has none'}")
        return servable, signature

    @contextlib.asynccontextmanager
    async def deadline(self, reading: bool = False):
        """The request timeout over the server's work on a request (`reading`: the body timeout over reading its
        body): a deadline on this task, not a task of its own, which `expire` can bring forward."""
        seconds = self.body_timeout if reading else self.timeout
        try:
            if self.stopping:
                raise TimeoutError
            async with asyncio.timeout(seconds) as deadline:
                self.deadlines.add(deadline)
                try:
                    yield
                finally:
                    self.deadlines.discard(deadline)
        except TimeoutError:
            if self.stopping:
                raise ShuttingDown("the server is shutting down and could not finish this request; retry") from None
            if reading:
                raise ClientTimeout(f"the request's body did not arrive within {seconds:g} s") from None
            raise Timeout(f"the request took longer than the server's {self.timeout:g} s timeout") from None

    def expire(self) -> None:
        """Ends every request in flight with ShuttingDown (503 / UNAVAILABLE), and any that starts later."""
        self.stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in list(self.deadlines):
            if not deadline.expired():
                deadline.reschedule(now)

    async def work(self, large: bool, fn, *args):
        """`fn(*args, cancelled)`: on the offload threads when `large`, else here, where a thread hop costs more."""
        return await self.offload(fn, *args) if large else fn(*args, NEVER)

    async def run(self, servable: Servable, signature: Signature, inputs: dict[str, np.ndarray]) -> dict:
        outputs = await self.batcher.run(servable, signature, inputs)
        if not self.allow_non_finite:
            self._check_finite(servable, inputs, outputs)
        return outputs

    @staticmethod
    def _check_finite(servable: Servable, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        """No NaN or infinite answer leaves as a 200: name the example, and its inputs outside the training range."""
        row = values.first_non_finite_row(outputs)
        if row is None:
            return
        outside = []
        for feature in servable.schema.inputs if servable.schema else ():
            stats, value = feature.stats, inputs.get(feature.name)
            if feature.is_numeric and value is not None and value.ndim == 1 and "min" in stats and \
                    not stats["min"] <= value[row] <= stats["max"]:
                outside.append(f"{feature.name}={value[row].item():.4g} (trained on {stats['min']:.4g} to "
                               f"{stats['max']:.4g})")
        raise RequestError(f"example {row}: the model's answer is not finite (NaN or Infinity) for these inputs"
                           + (f"; inputs outside the training range: {', '.join(outside)}" if outside else "")
                           + "; expected inputs the model computes a finite answer for")

    async def run_examples(self, servable: Servable, signature: Signature, examples: list[bytes]) -> dict:
        """A classify or regress signature on serialized examples; read the answer with `classes` or `regressions`."""
        return await self.run(servable, signature, {"inputs": np.array(examples, dtype=object)})

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
