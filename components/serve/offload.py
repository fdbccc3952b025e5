"""Work too large for the event loop, on a small bounded pool of threads.

Parsing, checking and converting a large request (and writing a large
answer) would stall every other request, `/healthz` included, if it ran on
the event loop. Here it runs on `threads` worker threads; at most `limit`
such jobs are queued or running at once, and one more is refused at once
(HTTP 429, gRPC RESOURCE_EXHAUSTED) instead of piling up memory. A job whose
request is abandoned (it ran past the request timeout) is removed from the
queue if it has not started, and told through its `cancelled` event if it
has, so that a worker does not spend itself on an answer nobody reads.

While a job runs, the event loop waits for the interpreter up to the switch
interval at every turn; it is 1 ms instead of Python's 5 for as long as any
job runs (keeping /healthz under 100 ms beside several large requests), and
back to what it was when none does, so small requests keep the usual one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading

from components.serve.errors import Overloaded

BUSY_SWITCH_INTERVAL = 0.001


class Offload:
    def __init__(self, threads: int, limit: int):
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="offload")
        self.limit, self.busy = limit, 0
        self.switch_interval = sys.getswitchinterval()

    async def __call__(self, fn, *args):
        """`fn(*args, cancelled)` on the pool; `cancelled` is set if the awaiting request is abandoned."""
        if self.busy >= self.limit:
            raise Overloaded(f"the server is already working on {self.busy} large requests; retry later")
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        if not self.busy:
            sys.setswitchinterval(BUSY_SWITCH_INTERVAL)
        self.busy += 1
        future = self.pool.submit(fn, *args, cancelled)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _done(self) -> None:
        self.busy -= 1
        if not self.busy:
            sys.setswitchinterval(self.switch_interval)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
