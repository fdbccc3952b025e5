"""The model server: REST and gRPC front ends on one asyncio loop (uvloop's), a model watcher, a batcher.

`ModelServer.serve_forever()` runs it in the foreground (`tfpipe serve`);
`running(cfg)` runs it on a background thread for as long as a `with` block
lasts (the infra check, tests, benchmarks) and gives its addresses.

In the foreground SIGTERM (what Kubernetes sends on every rollout) and SIGINT
have handlers of their own, installed even where the signal was ignored (a
job started with `&` from a script ignores SIGINT) and effective as a
container's PID 1 (the kernel drops a signal PID 1 has no handler for). The
first starts `shutdown`: readiness answers 503 at once, requests are still
answered for `serve.shutdown_delay_seconds` (endpoints are removed from load
balancers asynchronously), then neither front end takes new connections or
RPCs, those in flight finish, what still runs near the end of
`serve.shutdown_grace_seconds` is answered 503 / UNAVAILABLE, the request
log writes its queue and publishes its file, and the process exits 0. A
second signal ends the process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from components.common.config import ServeConfig
from components.common.errors import TfpipeError
from components.serve import grpc_service, rest
from components.serve.announce import Listening
from components.serve.batching import Batcher
from components.serve.connections import Connections
from components.serve.models import ModelManager
from components.serve.request_log import RequestLog
from components.serve.service import Service

log = logging.getLogger("tfpipe.serve")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Descriptors kept for everything but client connections (model files, the request log, gRPC's and TensorFlow's
# own): this many, plus a tenth of the limit.
RESERVED_DESCRIPTORS = 256
CLOSE_SECONDS = 1.0  # at the very end, connections still open get this long before they are closed
# After an answer that left its body unread, the rest is read and dropped this long before the connection closes
# (so the client reads the answer, not a reset); aiohttp's 10 s default held a stalled client's descriptor.
LINGER_SECONDS = 2.0


class StartError(TfpipeError):
    """The server cannot start as configured: no model base, a port in use."""


class ModelServer:
    """`clock` stamps the request log's records (components.serve.request_log); `delay(seconds)` waits out
    serve.shutdown_delay_seconds. Both are the real clock's unless a caller (a test ordering requests by its own
    events rather than by time) hands in its own."""

    def __init__(self, cfg: ServeConfig, clock: Callable[[], float] = time.time,
                 delay: Callable[[float], Awaitable[None]] = asyncio.sleep):
        cfg.validate()
        if not cfg.model_base or not Path(cfg.model_base).is_dir():
            raise StartError(f"serve.model_base {cfg.model_base or '(empty)'}: no such folder; expected the "
                             "model's folder of numbered versions (<base>/<name>)")
        if cfg.logging.sampling_rate > 0 and not cfg.logging.dir:
            raise StartError(f"serve.logging.dir: needed to log requests (serve.logging.sampling_rate is "
                             f"{cfg.logging.sampling_rate:g}); expected the folder the log files go to")
        self.cfg, self.clock, self.delay = cfg, clock, delay
        self.manager = ModelManager(cfg.model_base, cfg.model_name, cfg.version_policy, cfg.versions,
                                    cfg.labels_file, cfg.poll_seconds)
        self.max_connections = connection_limit(cfg.max_connections)
        self.rest_port = self.grpc_port = 0
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._connections: Connections | None = None
        self._grpc = None
        self._batcher: Batcher | None = None
        self._request_log: RequestLog | None = None
        self._service: Service | None = None

    async def start(self) -> None:
        """Loads the versions, then listens on both ports; on failure, stops whatever had started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.manager.start()
        # Loaded models leave many long-lived Python objects; frozen out of the collector's generations,
        # a full collection no longer stalls the requests in flight (benchmarks/serve.py: p99 at
        # concurrency 32 with batching went from ~170 ms to ~7 ms).
        gc.collect()
        gc.freeze()
        self._batcher = Batcher(self.cfg.batching)
        registry = CollectorRegistry()
        logging_on = self.cfg.logging.sampling_rate > 0
        self._request_log = RequestLog(self.cfg.logging, registry, self.clock) if logging_on else None
        self._service = service = Service(self.manager, self._batcher, self.cfg.request_timeout_seconds, registry,
                                          self.cfg.allow_non_finite, self.cfg.max_request_bytes, self._request_log,
                                          self.cfg.body_timeout_seconds)
        self._runner = web.AppRunner(rest.app(service, self.cfg.max_request_bytes), access_log=None,
                                     keepalive_timeout=self.cfg.idle_timeout_seconds, shutdown_timeout=CLOSE_SECONDS,
                                     lingering_time=LINGER_SECONDS)
        await self._runner.setup()
        self._connections = Connections(self._runner.server, self.max_connections, self.cfg.header_timeout_seconds,
                                        registry)
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self._connections, self.cfg.host, self.cfg.rest_port, backlog=128)
        except OSError as e:
            raise StartError(f"REST port {self.cfg.host}:{self.cfg.rest_port}: {e.strerror or e} "
                             "(serve.rest_port; 0 picks a free one)") from None
        self.rest_port = self._listener.sockets[0].getsockname()[1]
        try:
            self._grpc, self.grpc_port = grpc_service.server(service, f"{self.cfg.host}:{self.cfg.grpc_port}",
                                                             self.cfg, self.max_connections)
        except RuntimeError:
            raise StartError(f"gRPC port {self.cfg.host}:{self.cfg.grpc_port}: cannot bind, most likely in use "
                             "(serve.grpc_port; 0 picks a free one)") from None
        await self._grpc.start()
        log.info("serve: %s (versions %s) on REST %s and gRPC %s", self.manager.name,
                 sorted(self.manager.servables), self.rest_url, self.grpc_target)

    @property
    def rest_url(self) -> str:
        return f"http://{self.cfg.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.cfg.host}:{self.grpc_port}"

    def listening(self) -> Listening:
        return Listening(self.manager.name, tuple(sorted(self.manager.servables)), self.rest_url, self.grpc_target)

    async def shutdown(self) -> None:
        """Drains, then stops (the module's docstring says how); returns within serve.shutdown_grace_seconds."""
        loop, cfg, service = asyncio.get_running_loop(), self.cfg, self._service
        drained_by = loop.time() + cfg.shutdown_grace_seconds - cfg.SHUTDOWN_RESERVE_SECONDS
        service.draining = True
        log.info("serve: stopping: readiness answers 503; new requests are taken for %g s, and those in flight "
                 "have until %g s from now to finish", cfg.shutdown_delay_seconds,
                 cfg.shutdown_grace_seconds - cfg.SHUTDOWN_RESERVE_SECONDS)
        await self.delay(cfg.shutdown_delay_seconds)
        self._listener.close()
        # gRPC's own grace ends after ours, so that RPCs still running are answered UNAVAILABLE, never cancelled.
        grace = drained_by - loop.time() + cfg.SHUTDOWN_RESERVE_SECONDS / 2
        drained = [asyncio.ensure_future(self._grpc.stop(grace=grace)),
                   asyncio.ensure_future(self._connections.all_closed.wait())]
        self._connections.close_idle()
        _, running = await asyncio.wait(drained, timeout=max(drained_by - loop.time(), 0))
        if running:
            log.info("serve: requests still running at the end of the drain are answered 503 / UNAVAILABLE")
            service.expire()
            self._connections.answer_waiting("the server is shutting down; retry")
            await asyncio.wait(drained, timeout=cfg.SHUTDOWN_RESERVE_SECONDS / 2)
        drained[1].cancel()
        await self.stop()

    async def stop(self) -> None:
        """Stops what has started at once; calling it again does nothing."""
        grpc_server, runner, batcher, service = self._grpc, self._runner, self._batcher, self._service
        request_log, listener, connections = self._request_log, self._listener, self._connections
        self._grpc = self._runner = self._batcher = self._service = self._request_log = self._listener = None
        self._connections = None
        if listener is not None:
            listener.close()
        if connections is not None:
            connections.close()
        if grpc_server is not None:
            await grpc_server.stop(grace=CLOSE_SECONDS)
        if runner is not None:
            await runner.cleanup()
        if batcher is not None:
            await batcher.close()
        if service is not None:
            service.offload.close()
        if request_log is not None:  # after the front ends: every answered request's record is written
            await asyncio.to_thread(request_log.close)
        self.manager.stop()

    def serve_forever(self) -> None:
        """Serves until SIGTERM or SIGINT, then shuts down gracefully; a second signal exits at once."""
        async def main():
            loop = asyncio.get_running_loop()
            stopping = asyncio.Event()
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, _on_signal, signum, stopping)
            try:
                await self.start()
                print(self.listening().to_line(), flush=True)
                log.info("serve: SIGTERM or Ctrl-C stops the server (a second one at once)")
                await stopping.wait()
                await self.shutdown()
            finally:
                await self.stop()

        uvloop.run(main())


def _on_signal(signum: int, stopping: asyncio.Event) -> None:
    if stopping.is_set():
        log.warning("serve: %s again: exiting at once", signal.Signals(signum).name)
        os._exit(128 + signum)
    log.info("serve: %s received", signal.Signals(signum).name)
    stopping.set()


def connection_limit(configured: int) -> int:
    """Connections each front end may hold open: serve.max_connections, or (0) what the descriptor limit leaves
    after RESERVED_DESCRIPTORS and a tenth of the limit, shared by the two front ends. The soft limit is raised to
    the hard one first, as Go's runtime and nginx do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    available = (soft - RESERVED_DESCRIPTORS - soft // 10) // 2
    if available < 1 or configured > available:
        raise StartError(f"serve.max_connections: {configured or 'the default'} connections per front end do not "
                         f"fit the process's descriptor limit of {soft} (at most {max(available, 0)} do); raise "
                         "the limit (ulimit -n) or lower serve.max_connections")
    return configured or available


@contextlib.contextmanager
def running(cfg: ServeConfig, clock: Callable[[], float] = time.time) -> Iterator[ModelServer]:
    """A server on a background thread, stopped when the block ends."""
    server = ModelServer(cfg, clock)
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="model-server", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=300)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
