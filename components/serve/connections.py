"""REST connections, bounded: how many are open, how long a client may take to send a request's headers.

aiohttp reads a request's headers with no deadline (a client that sends half a
request line holds its connection, and a file descriptor, for as long as it
likes) and accepts connections until the process runs out of descriptors,
after which every request is reset and the model watcher cannot open a file.
So each connection's aiohttp protocol is wrapped in a `Guard`:

- at most `limit` connections are open; one more is answered 503 at once and
  closed, before aiohttp sees it;
- from the first byte of a request until its handler starts (its headers are
  in), `header_timeout` seconds; past it the client gets 408 and the
  connection is closed. A connection only notes when its request began, and
  one sweep a second (more often for short timeouts) finds the late ones: a
  timer per request would cost the busy path an allocation and a cancel;
- when the server drains, idle connections are closed at once and busy ones
  once their answer is written (answers then say `Connection: close`);
  `answer_waiting` ends those still sending headers with 503. A connection
  that has not sent its first request is idle only once NEW_SECONDS old (as
  in Go's net/http): its request may be on its way, and closing it would cut
  it.

A connection with no request is closed by aiohttp's keep-alive timeout
(`serve.idle_timeout_seconds`); a body that stalls is the body timeout of
components.serve.rest.
"""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import CollectorRegistry, Counter

SWEEP_SECONDS = 1.0  # how often late headers (and, draining, idle connections) are looked for, at most
NEW_SECONDS = 2.0  # a connection younger than this with no request yet is not idle
LINGER_SECONDS = 1.0  # a refused connection stays half-closed this long, so that the client reads its 503
LINGER_LIMIT = 64  # refused connections lingering at once; past it one is closed at once
REASONS = {408: "Request Timeout", 503: "Service Unavailable"}


class Connections:
    """The protocol factory given to the event loop's `create_server`: a `Guard` per connection."""

    def __init__(self, make_protocol, limit: int, header_timeout: float, registry: CollectorRegistry):
        """Made on the running event loop, whose clock times the headers until `close`."""
        self.make_protocol = make_protocol  # aiohttp's web.Server: a new RequestHandler per call
        self.limit, self.header_timeout = limit, header_timeout
        self.loop = asyncio.get_running_loop()
        self.open: set[Guard] = set()
        self.draining = False
        self.lingering = 0
        self.all_closed = asyncio.Event()  # set while none is open
        self.all_closed.set()
        self.refused = Counter("tfpipe_serve_connections_refused", "REST connections refused: the server had "
                               "serve.max_connections open", registry=registry)
        self.sweep_seconds = min(SWEEP_SECONDS, header_timeout / 4)
        self.sweeper = self.loop.call_later(self.sweep_seconds, self._sweep)

    def __call__(self) -> Guard:
        return Guard(self)

    def close_idle(self) -> None:
        """Closes every idle connection, now and at every sweep from now on; the others close once answered."""
        self.draining = True
        new = self.loop.time() - NEW_SECONDS
        for guard in [g for g in self.open if g.idle(new)]:
            guard.transport.close()

    def answer_waiting(self, message: str) -> None:
        """503 to every connection still sending a request's headers, then closes it."""
        for guard in [g for g in self.open if g.began]:
            guard.answer(503, message)

    def close(self) -> None:
        self.sweeper.cancel()

    def _sweep(self) -> None:
        """408 to every connection whose request's headers are late; draining, closes those gone idle."""
        late = self.loop.time() - self.header_timeout
        for guard in [g for g in self.open if 0 < g.began <= late]:
            guard.answer(408, f"the request's headers did not arrive within {self.header_timeout:g} s")
        if self.draining:
            self.close_idle()
        self.sweeper = self.loop.call_later(self.sweep_seconds, self._sweep)


class Guard(asyncio.Protocol):
    """One connection: counts it, times its headers, forwards everything else to aiohttp's protocol."""

    def __init__(self, owner: Connections):
        self.owner = owner
        self.inner: asyncio.Protocol | None = None  # None: refused
        self.transport: asyncio.Transport | None = None
        self.began = 0.0  # when a request's first byte came, while its headers are on their way; else 0
        self.busy = False  # a handler is working on a request
        self.served = False  # it has had an answer
        self.opened = owner.loop.time()
        self.last = False  # the answer being written is the connection's last: nothing more is timed

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        owner = self.owner
        if len(owner.open) >= owner.limit:
            owner.refused.inc()
            self._refuse()
            return
        owner.open.add(self)
        owner.all_closed.clear()
        self.inner = owner.make_protocol()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return  # refused: what it sends is read and dropped until it is closed
        if not self.began and not self.busy and not self.last:
            self.began = self.owner.loop.time()
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.began = 0.0
        if self.inner is None:
            self.owner.lingering -= 1
            return
        self.owner.open.discard(self)
        if not self.owner.open:
            self.owner.all_closed.set()
        self.inner.connection_lost(exc)

    def started(self) -> None:
        """A handler starts on a request: its headers are in."""
        self.began = 0.0
        self.busy = True

    def finished(self, keep_alive: bool) -> None:
        """The handler's answer is ready; `keep_alive` False when the connection closes after it."""
        self.busy = False
        self.served = True
        self.last = not keep_alive

    def idle(self, new: float) -> bool:
        """Waiting for a request: none in a handler or on its way, its last answer written (nothing left in the
        write buffer), and either answered before or opened before `new`."""
        return not (self.busy or self.began or self.transport.get_write_buffer_size()) and \
            (self.served or self.opened <= new)

    def answer(self, status: int, message: str) -> None:
        """A whole answer written past aiohttp (no request of this connection is in its hands), then closed."""
        self.began = 0.0
        self.transport.write(_response(status, message))
        self.transport.close()

    def _refuse(self) -> None:
        """503, then a half-close: the client reads the answer and an end of stream, not a reset."""
        owner = self.owner
        owner.lingering += 1
        self.transport.write(_response(503, f"the server has {owner.limit} connections open; retry later"))
        if owner.lingering > LINGER_LIMIT or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        owner.loop.call_later(LINGER_SECONDS, self.transport.close)


def _response(status: int, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
