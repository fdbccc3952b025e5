"""Shared fixtures: small data files written per test, a reader for what ingest wrote, a stand-in HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def people_rows(n: int = 500, seed: int = 0) -> tuple[list[str], list[list]]:
    """An id, two numbers, a category with a comma-quoted value, a label."""
    rng = np.random.default_rng(seed)
    header = ["id", "age", "income", "city", "label"]
    cities = ["Paris", "Oslo", "Lima", "Austin, TX"]
    rows = [
        [i, int(rng.integers(18, 90)), round(float(rng.normal(50_000, 9_000)), 2), cities[i % 4],
         int(rng.integers(0, 2))]
        for i in range(n)
    ]
    return header, rows


@pytest.fixture
def people_csv(tmp_path: Path) -> Path:
    header, rows = people_rows()
    return write_csv(tmp_path / "people.csv", header, rows)


def read_examples(out: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Every split of an ingest output, parsed with the schema, as numpy columns."""
    import tensorflow as tf

    from components.common.schema import Schema

    schema = Schema.read(str(out))
    spec = schema.parse_spec()
    result = {}
    for split in ("train", "eval", "test"):
        files = sorted(tf.io.gfile.glob(f"{out}/{split}/*.tfrecord.gz"))
        ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
        ds = ds.map(lambda x: tf.io.parse_example(x, spec))
        cols: dict[str, list] = {name: [] for name in spec}
        for batch in ds:
            for name, value in batch.items():
                cols[name].append(value.numpy())
        result[split] = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    return result


def all_rows(examples: dict[str, dict[str, np.ndarray]], key: str) -> dict:
    """{key value: {column: value}} over every split."""
    out = {}
    for split, cols in examples.items():
        for i, k in enumerate(cols[key]):
            out[int(k)] = {**{c: v[i] for c, v in cols.items()}, "_split": split}
    return out


@contextlib.contextmanager
def http_server(handler):
    """A real aiohttp server on 127.0.0.1 answering every request with `handler`; yields its base URL.

    It stands in for APIs these machines cannot reach (Kubernetes, KFP), so the real clients' requests
    can be checked as sent.
    """
    from aiohttp import web

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web.Application())
    runner.app.router.add_route("*", "/{tail:.*}", handler)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
    asyncio.run_coroutine_threadsafe(web.TCPSite(runner, "127.0.0.1", 0).start(), loop).result()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """Cloud Storage for the whole session: fake-gcs-server on 127.0.0.1 (see tests/gcs.py); each test makes its
    own bucket."""
    from tests.gcs import emulator

    with emulator(tmp_path_factory.mktemp("gcs")) as running:
        yield running


@pytest.fixture
def gcs_env(gcs, monkeypatch):
    """This process pointed at the emulator for one test, through every client (TensorFlow's gs:// included)."""
    for name, value in gcs.environment().items():
        monkeypatch.setenv(name, value)
    return gcs


@pytest.fixture
def bucket_name(request) -> str:
    """A bucket name of this test's own (Cloud Storage's rules: lower case, digits, dashes)."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50] + f"-{os.getpid()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a slow or docker test run first, each module kept whole (its fixtures are built once).

    `make test` runs two workers, which take tests in collection order; a minute-long test collected last runs
    alone at the end while the other worker idles. Started first, the long ones overlap the many short ones.
    """
    long = {item.module.__name__ for item in items
            if item.get_closest_marker("slow") or item.get_closest_marker("docker")}
    items.sort(key=lambda item: item.module.__name__ not in long)
