"""Dynamic batching with TF Serving's options.

Requests for the same version, signature and input shapes wait in one queue;
a collector takes up to `max_batch_size` rows, or what has arrived when
`batch_timeout_micros` have passed since the first, concatenates them, runs
one model call on a pool of `num_batch_threads`, and splits the outputs back
by rows. At most `max_enqueued_batches` batches' worth of rows wait; more is
refused at once (HTTP 429, gRPC RESOURCE_EXHAUSTED) rather than queued
without bound. Without batching every request is one model call on the pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

import numpy as np

from components.common.config import BatchingConfig
from components.common.errors import TfpipeError
from components.serve.models import Servable, Signature


class Overloaded(TfpipeError):
    """The queue is full: HTTP 429, gRPC RESOURCE_EXHAUSTED."""


@dataclass
class _Request:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future


class _Queue:
    def __init__(self):
        self.items: asyncio.Queue[_Request] = asyncio.Queue()
        self.rows = 0


class Batcher:
    def __init__(self, options: BatchingConfig, on_batch=lambda rows: None):
        self.options = options
        self.pool = concurrent.futures.ThreadPoolExecutor(options.num_batch_threads, thread_name_prefix="batch")
        self.slots = asyncio.Semaphore(options.num_batch_threads)
        self.queues: dict[tuple, _Queue] = {}
        self.on_batch = on_batch  # called with each model call's row count (for metrics)
        self.limit = options.max_enqueued_batches * options.max_batch_size
        self.tasks: set[asyncio.Task] = set()

    async def run(self, servable: Servable, signature: Signature, inputs: dict[str, np.ndarray]) -> dict:
        rows = len(next(iter(inputs.values())))
        if not self.options.enabled or rows >= self.options.max_batch_size:
            return await self._call(servable, signature, inputs, rows)
        key = (id(servable), signature.name, tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())))
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = _Queue()
            self._track(asyncio.get_running_loop().create_task(self._collect(key, queue, servable, signature)))
        if queue.rows + rows > self.limit:
            raise Overloaded(f"the batching queue is full ({queue.rows} rows waiting); retry later")
        request = _Request(inputs, rows, asyncio.get_running_loop().create_future())
        queue.rows += rows
        queue.items.put_nowait(request)
        return await request.future

    async def _call(self, servable, signature, inputs, rows) -> dict:
        async with self.slots:
            self.on_batch(rows)
            return await asyncio.get_running_loop().run_in_executor(self.pool, servable.run, signature, inputs)

    async def _collect(self, key, queue: _Queue, servable: Servable, signature: Signature) -> None:
        """Forms batches for one queue for as long as its servable is loaded and requests come."""
        carry: _Request | None = None
        timeout = self.options.batch_timeout_micros / 1e6
        while True:
            first = carry
            if first is None:
                try:
                    first = await asyncio.wait_for(queue.items.get(), 60)
                except asyncio.TimeoutError:  # idle: retire this queue
                    if queue.items.empty():
                        del self.queues[key]
                        return
                    continue
            carry = None
            batch, rows = [first], first.rows
            deadline = asyncio.get_running_loop().time() + timeout
            while rows < self.options.max_batch_size:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.items.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if rows + item.rows > self.options.max_batch_size:
                    carry = item
                    break
                batch.append(item)
                rows += item.rows
            queue.rows -= rows
            await self.slots.acquire()
            self._track(asyncio.get_running_loop().create_task(self._run_batch(servable, signature, batch, rows)))

    async def _run_batch(self, servable: Servable, signature: Signature, batch: list[_Request], rows: int) -> None:
        try:
            merged = {k: np.concatenate([r.inputs[k] for r in batch]) for k in batch[0].inputs}
            self.on_batch(rows)
            outputs = await asyncio.get_running_loop().run_in_executor(self.pool, servable.run, signature, merged)
            start = 0
            for request in batch:
                end = start + request.rows
                if not request.future.done():
                    request.future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end
        except Exception as e:  # one bad batch fails its own requests, never the collector
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(e)
        finally:
            self.slots.release()

    def _track(self, task: asyncio.Task) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Cancels the collectors and batches in flight, then the model-call pool."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
