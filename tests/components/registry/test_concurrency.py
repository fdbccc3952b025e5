"""Concurrent changes, from several processes and from several threads: none is lost, the file is always whole."""

import json
import threading

from components.common.registry import Registry
from tests.components.registry.conftest import GATE, at_once, blessed

PROMOTER = f"""
import sys
from components.common.registry import Registry
home, alias, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
registry = Registry(home)
{GATE}
for i in range(count):
    registry.promote(1 + i % 2, alias)
"""


def history(home, alias: str) -> list[int]:
    return [c.version for c in Registry(str(home)).read().alias(alias).history]


def test_processes_promoting_at_once_lose_no_promotion(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.9))
    count, aliases = 40, ["one", "two", "three"]
    at_once(PROMOTER, [[str(home), alias, str(count)] for alias in aliases])  # every process promotes at once
    for alias in aliases:
        assert history(home, alias) == [1 + i % 2 for i in range(count)]
    assert json.loads((home / "labels.json").read_text()) == {alias: 2 for alias in aliases}


def test_threads_promoting_and_rolling_back_at_once_lose_nothing(home):
    registry = Registry(str(home))
    for version in (1, 2, 3):
        registry.register(version, blessed(0.9))
    count, errors = 25, []
    readers_done = threading.Event()

    def promote(alias: str) -> None:
        try:
            own = Registry(str(home))
            for i in range(count):
                own.promote(1 + i % 3, alias)
                if i % 5 == 4:
                    own.rollback(alias)
        except Exception as e:  # noqa: BLE001 (reported by the assertion below)
            errors.append(e)

    def read() -> None:  # readers never lock, and never see half a file
        while not readers_done.is_set():
            try:
                Registry(str(home)).read()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=promote, args=(f"t{i}",)) for i in range(4)]
    reader = threading.Thread(target=read)
    for thread in [*threads, reader]:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    readers_done.set()
    reader.join(timeout=10)
    assert not errors
    record = Registry(str(home)).read()
    for i in range(4):
        changes = record.alias(f"t{i}").history
        assert len(changes) == count + count // 5
        assert [c.action for c in changes].count("rollback") == count // 5
