"""Dynamic batching with TF Serving's options.

Requests for the same version, signature and input shapes join one open
batch. The batch closes when it holds `max_batch_size` rows, when the next
request would not fit, or `batch_timeout_micros` after its first request,
whichever comes first; its inputs are concatenated, run as one model call on
a pool of `num_batch_threads`, and the outputs split back by rows. At most
`max_enqueued_batches` batches' worth of rows wait (open, or closed and
waiting for a thread); more is refused at once (HTTP 429, gRPC
RESOURCE_EXHAUSTED) rather than queued without bound. Without batching every
request is one model call on the pool.

The open batch is a list and its deadline one `loop.call_later` timer: a
request costs an append and a future, never a task of its own, because at
thousands of requests a second the event loop's per-request work is what
bounds the server. Without batching, a request alone in the server whose
model call took under `INLINE_SECONDS` the last time runs it on the event
loop: nothing else waits for the loop, and the two thread hops to and from
the pool cost more than the call itself (one client sending one request
after another over REST: 1.14x the requests/s, over gRPC 1.03x).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field

import numpy as np

from components.common.config import BatchingConfig
from components.serve.errors import Overloaded
from components.serve.models import Servable, Signature

INLINE_SECONDS = 0.002  # a lone request's model call runs on the event loop if it took less the last time


@dataclass
class _Request:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future


@dataclass
class _Queue:
    """One servable, signature and input shape's open batch, and its rows waiting in all."""
    servable: Servable
    signature: Signature
    open: list[_Request] = field(default_factory=list)
    open_rows: int = 0
    waiting_rows: int = 0
    deadline: asyncio.TimerHandle | None = None


class Batcher:
    def __init__(self, options: BatchingConfig, on_batch=lambda rows: None):
        self.options = options
        self.pool = concurrent.futures.ThreadPoolExecutor(options.num_batch_threads, thread_name_prefix="batch")
        self.slots = asyncio.Semaphore(options.num_batch_threads)
        self.queues: dict[tuple, _Queue] = {}
        self.on_batch = on_batch  # called with each model call's row count (for metrics)
        self.limit = options.max_enqueued_batches * options.max_batch_size
        self.tasks: set[asyncio.Task] = set()
        self.unbatched = 0  # requests waiting for, or in, a model call of their own
        # seconds the last model call took, by (servable, signature, rows): whether a lone request's may run inline
        self.call_seconds: dict[tuple[int, str, int], float] = {}

    def queued_rows(self) -> int:
        """Rows waiting for a model call (open batches, and closed ones waiting for a slot): the queue's depth."""
        return sum(queue.waiting_rows for queue in list(self.queues.values()))

    async def run(self, servable: Servable, signature: Signature, inputs: dict[str, np.ndarray]) -> dict:
        rows = len(next(iter(inputs.values())))
        if not self.options.enabled or rows >= self.options.max_batch_size:
            timing = (id(servable), signature.name, rows)
            if not self.unbatched and self.call_seconds.get(timing, INLINE_SECONDS) < INLINE_SECONDS:
                self.on_batch(rows)
                return self._timed(timing, servable, signature, inputs)
            self.unbatched += 1
            try:
                async with self.slots:
                    self.on_batch(rows)
                    return await asyncio.get_running_loop().run_in_executor(
                        self.pool, self._timed, timing, servable, signature, inputs)
            finally:
                self.unbatched -= 1
        key = (id(servable), signature.name, tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())))
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = _Queue(servable, signature)
        if queue.waiting_rows + rows > self.limit:
            raise Overloaded(f"the batching queue is full ({queue.waiting_rows} rows waiting); retry later")
        if queue.open_rows + rows > self.options.max_batch_size:
            self._close(key, queue)
        request = _Request(inputs, rows, asyncio.get_running_loop().create_future())
        queue.open.append(request)
        queue.open_rows += rows
        queue.waiting_rows += rows
        if queue.open_rows == self.options.max_batch_size:
            self._close(key, queue)
        elif queue.deadline is None:
            queue.deadline = asyncio.get_running_loop().call_later(
                self.options.batch_timeout_micros / 1e6, self._close, key, queue)
        return await request.future

    def _close(self, key: tuple, queue: _Queue) -> None:
        """Sends the open batch on its way to a model call and starts a new one."""
        if queue.deadline is not None:
            queue.deadline.cancel()
            queue.deadline = None
        batch, rows = queue.open, queue.open_rows
        queue.open, queue.open_rows = [], 0
        if batch:
            task = asyncio.get_running_loop().create_task(self._run_batch(key, queue, batch, rows))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run_batch(self, key: tuple, queue: _Queue, batch: list[_Request], rows: int) -> None:
        try:
            async with self.slots:
                queue.waiting_rows -= rows
                if not queue.waiting_rows and self.queues.get(key) is queue:
                    del self.queues[key]  # idle: a later request starts afresh (and frees the old servable)
                merged = {k: np.concatenate([r.inputs[k] for r in batch]) for k in batch[0].inputs}
                outputs = await self._call(queue.servable, queue.signature, merged, rows)
            start = 0
            for request in batch:
                end = start + request.rows
                if not request.future.done():
                    request.future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end
        except Exception as e:  # one bad batch fails its own requests, never the server
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(e)

    async def _call(self, servable: Servable, signature: Signature, inputs: dict, rows: int) -> dict:
        self.on_batch(rows)
        return await asyncio.get_running_loop().run_in_executor(self.pool, servable.run, signature, inputs)

    def _timed(self, timing: tuple[int, str, int], servable: Servable, signature: Signature, inputs: dict) -> dict:
        started = time.perf_counter()
        try:
            return servable.run(signature, inputs)
        finally:
            self.call_seconds[timing] = time.perf_counter() - started

    async def close(self) -> None:
        """Fails the open batches, cancels those in flight, then shuts the model-call pool."""
        for queue in self.queues.values():
            if queue.deadline is not None:
                queue.deadline.cancel()
            for request in queue.open:
                request.future.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
