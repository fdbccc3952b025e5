"""Progress lines for long work: a count, a rate, and what else matters, every few seconds."""

from __future__ import annotations

import logging
import time


class Progress:
    def __init__(self, what: str, log: logging.Logger, every_seconds: float = 2.0):
        self.what = what
        self.log = log
        self.every = every_seconds
        self.start = self.last = time.perf_counter()

    def update(self, count: int, detail: str = "") -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self.log.info("%s: %s rows (%s rows/s)%s", self.what, f"{count:,}", f"{self._rate(count, now):,.0f}",
                          f", {detail}" if detail else "")

    def done(self, count: int, detail: str) -> None:
        now = time.perf_counter()
        self.log.info("%s: done in %.1fs (%s rows/s): %s", self.what, now - self.start,
                      f"{self._rate(count, now):,.0f}", detail)

    def _rate(self, count: int, now: float) -> float:
        return count / max(now - self.start, 1e-9)
