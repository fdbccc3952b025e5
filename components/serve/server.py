"""The model server: REST and gRPC front ends on one asyncio loop (uvloop's), a model watcher, a batcher.

`ModelServer.serve_forever()` runs it in the foreground (`tfpipe serve`);
`running(cfg)` runs it on a background thread for as long as a `with` block
lasts (the infra check, tests, benchmarks) and gives its addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from components.common.config import ServeConfig
from components.common.errors import TfpipeError
from components.serve import grpc_service, rest
from components.serve.announce import Listening
from components.serve.batching import Batcher
from components.serve.models import ModelManager
from components.serve.request_log import RequestLog
from components.serve.service import Service

log = logging.getLogger("tfpipe.serve")


class StartError(TfpipeError):
    """The server cannot start as configured: no model base, a port in use."""


class ModelServer:
    def __init__(self, cfg: ServeConfig):
        cfg.validate()
        if not cfg.model_base or not Path(cfg.model_base).is_dir():
            raise StartError(f"serve.model_base {cfg.model_base or '(empty)'}: no such folder; expected the "
                             "model's folder of numbered versions (<base>/<name>)")
        if cfg.logging.sampling_rate > 0 and not cfg.logging.dir:
            raise StartError(f"serve.logging.dir: needed to log requests (serve.logging.sampling_rate is "
                             f"{cfg.logging.sampling_rate:g}); expected the folder the log files go to")
        self.cfg = cfg
        self.manager = ModelManager(cfg.model_base, cfg.model_name, cfg.version_policy, cfg.versions,
                                    cfg.labels_file, cfg.poll_seconds)
        self.rest_port = self.grpc_port = 0
        self._runner: web.AppRunner | None = None
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
        self._request_log = RequestLog(self.cfg.logging, registry) if self.cfg.logging.sampling_rate > 0 else None
        self._service = service = Service(self.manager, self._batcher, self.cfg.request_timeout_seconds, registry,
                                          self.cfg.allow_non_finite, self.cfg.max_request_bytes, self._request_log)
        self._runner = web.AppRunner(rest.app(service, self.cfg.max_request_bytes), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.cfg.host, self.cfg.rest_port).start()
        except OSError as e:
            raise StartError(f"REST port {self.cfg.host}:{self.cfg.rest_port}: {e.strerror or e} "
                             "(serve.rest_port; 0 picks a free one)") from None
        self.rest_port = self._runner.addresses[0][1]
        try:
            self._grpc, self.grpc_port = grpc_service.server(service, f"{self.cfg.host}:{self.cfg.grpc_port}",
                                                             self.cfg.max_request_bytes)
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

    async def stop(self) -> None:
        """Stops what has started; calling it again does nothing."""
        grpc_server, runner, batcher, service = self._grpc, self._runner, self._batcher, self._service
        request_log = self._request_log
        self._grpc = self._runner = self._batcher = self._service = self._request_log = None
        if grpc_server is not None:
            await grpc_server.stop(grace=2)
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
        async def main():
            await self.start()
            print(self.listening().to_line(), flush=True)
            log.info("serve: Ctrl-C stops the server")
            try:
                await asyncio.Event().wait()
            finally:
                await self.stop()

        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(main())


@contextlib.contextmanager
def running(cfg: ServeConfig) -> Iterator[ModelServer]:
    """A server on a background thread, stopped when the block ends."""
    server = ModelServer(cfg)
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
