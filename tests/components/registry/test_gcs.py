"""The registry on gs://, against Cloud Storage's emulator (fake-gcs-server), which keeps object generations and
refuses a write conditional on a generation that is no longer current: every change is such a write, a change
that lost the race is applied again to the newer record, none is lost."""

import json
import threading

import pytest

from components.common.registry import Registry
from tests.components.registry.conftest import blessed


@pytest.fixture
def home(gcs, bucket_name) -> str:
    """`gs://<bucket>/serving/penguins` with versions 1, 2 and 3 (a placeholder saved_model.pb each)."""
    bucket = gcs.bucket(bucket_name)
    for version in (1, 2, 3):
        bucket.blob(f"serving/penguins/{version}/saved_model.pb").upload_from_string(b"placeholder")
        bucket.blob(f"serving/penguins/{version}/variables/variables.index").upload_from_string(b"placeholder")
    return f"gs://{bucket_name}/serving/penguins"


def registry_of(gcs, home: str) -> Registry:
    return Registry(home, storage_client=gcs.client())


def stored_json(gcs, home: str, name: str):
    return json.loads(gcs.read(f"{home}/{name}"))


def generation(gcs, uri: str) -> int:
    bucket, _, name = uri[len("gs://"):].partition("/")
    return gcs.client().bucket(bucket).get_blob(name).generation


def test_the_registry_on_gcs_keeps_versions_aliases_and_history(gcs, home):
    registry = registry_of(gcs, home)
    assert [v.version for v in registry.read().versions] == [1, 2, 3]  # the migration lists the version folders
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.95))
    registry.promote(1, "production")
    first = generation(gcs, f"{home}/registry.json")
    registry.promote(2, "production")
    assert generation(gcs, f"{home}/registry.json") != first  # each change is a new generation of the object
    assert registry.rollback("production").version == 1
    assert stored_json(gcs, home, "labels.json") == {"production": 1}
    history = stored_json(gcs, home, "registry.json")["aliases"]["production"]["history"]
    assert [(h["version"], h["action"]) for h in history] == [(1, "promote"), (2, "promote"), (1, "rollback")]
    assert registry_of(gcs, home).labels() == {"production": 1}  # a new reader sees what the first wrote


def test_a_write_that_lost_the_race_is_applied_again_to_the_newer_record(gcs, home):
    registry = registry_of(gcs, home)
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.9))
    store = registry.store
    read, raced = store._read, []

    def read_then_someone_else_promotes(path: str):
        found = read(path)
        if not raced and path == store.path:  # between this read and its write, another writer changes it
            raced.append(found[1])
            registry_of(gcs, home).promote(2, "shadow")
        return found

    store._read = read_then_someone_else_promotes
    registry.promote(1, "production")
    assert raced  # the emulator refused the write conditional on the old generation, so it was read again
    assert registry.labels() == {"production": 1, "shadow": 2}
    assert stored_json(gcs, home, "labels.json") == {"production": 1, "shadow": 2}


def test_threads_promoting_on_gcs_at_once_lose_nothing(gcs, home):
    registry = registry_of(gcs, home)
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.9))
    errors = []

    def promote(alias: str) -> None:
        try:
            own = registry_of(gcs, home)
            for i in range(8):
                own.promote(1 + i % 2, alias)
        except Exception as e:  # noqa: BLE001 (reported by the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=promote, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    record = registry.read()
    assert all(len(record.alias(f"t{i}").history) == 8 for i in range(3))
    assert stored_json(gcs, home, "labels.json") == {"t0": 2, "t1": 2, "t2": 2}
