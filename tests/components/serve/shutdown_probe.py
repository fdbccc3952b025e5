"""`python -m components serve` as the under-load shutdown test runs it, with one difference: the shutdown delay
(serve.shutdown_delay_seconds) ends when a line arrives on stdin, so the test, not the clock, says when the load
balancer has let go. Arguments: `serve.<key>=<value>` settings."""

import asyncio
import logging
import sys

from components.common import config as config_lib
from components.serve.server import ModelServer


async def until_told(seconds: float) -> None:
    del seconds  # the line on stdin ends the delay, however long it takes to come
    await asyncio.to_thread(sys.stdin.readline)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    ModelServer(config_lib.load_section(None, sys.argv[1:], "serve").serve, delay=until_told).serve_forever()
