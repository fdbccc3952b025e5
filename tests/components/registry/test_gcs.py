"""The registry on gs://, against a stand-in Cloud Storage JSON API on 127.0.0.1 that keeps object generations:
every write is conditional on the generation read, a write that lost the race is applied again, none is lost."""

import email
import json
import threading

import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from components.common.registry import Registry
from tests.components.registry.conftest import blessed
from tests.conftest import http_server

HOME = "gs://models/serving/penguins"


class Bucket:
    """Objects with generations, answered as Cloud Storage's JSON API does (the parts the client uses here)."""

    def __init__(self):
        self.objects: dict[str, tuple[bytes, int]] = {}
        self.generations = 0
        self.uploads: list[tuple[str, str | None, int]] = []  # (object, ifGenerationMatch, status)
        self.interfere = None  # called with the stored registry.json before the next upload of it is answered

    def store(self, name: str, data: bytes) -> int:
        self.generations += 1
        self.objects[name] = (data, self.generations)
        return self.generations

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/download/storage/v1/b/models/o/"):
            name = path.split("/o/", 1)[1]
            if name not in self.objects:
                return _error(404)
            data, generation = self.objects[name]
            return web.Response(body=data, headers={"x-goog-generation": str(generation),
                                                    "x-goog-metageneration": "1"})
        if path.startswith("/upload/storage/v1/b/models/o"):
            return self.upload(request, await request.read())
        if path == "/storage/v1/b/models/o":  # list: the version "folders" under a prefix
            prefix = request.query["prefix"]
            below = {n[len(prefix):].split("/", 1)[0] + "/" for n in self.objects
                     if n.startswith(prefix) and "/" in n[len(prefix):]}
            return web.json_response({"kind": "storage#objects", "prefixes": sorted(prefix + b for b in below)})
        if path.startswith("/storage/v1/b/models/o/"):
            name = path.split("/o/", 1)[1]
            if name not in self.objects:
                return _error(404)
            return web.json_response({"name": name, "bucket": "models", "generation": str(self.objects[name][1])})
        if path == "/storage/v1/b/models":
            return web.json_response({"name": "models"})
        return _error(400)

    def upload(self, request: web.Request, body: bytes) -> web.Response:
        message = email.message_from_bytes(f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
                                           + body)
        metadata, media = message.get_payload()
        name = json.loads(metadata.get_payload())["name"]
        if name.endswith("registry.json") and self.interfere is not None and name in self.objects:
            interfere, self.interfere = self.interfere, None
            self.store(name, interfere(self.objects[name][0]))
        wanted = request.query.get("ifGenerationMatch")
        current = self.objects.get(name, (b"", 0))[1]
        if wanted is not None and int(wanted) != current:
            self.uploads.append((name, wanted, 412))
            return _error(412)
        generation = self.store(name, media.get_payload(decode=True))
        self.uploads.append((name, wanted, 200))
        return web.json_response({"name": name, "bucket": "models", "generation": str(generation)})


def _error(code: int) -> web.Response:
    return web.json_response({"error": {"code": code, "message": f"stand-in {code}"}}, status=code)


@pytest.fixture
def bucket():
    bucket = Bucket()
    for version in (1, 2, 3):
        bucket.store(f"serving/penguins/{version}/saved_model.pb", b"placeholder")
        bucket.store(f"serving/penguins/{version}/variables/variables.index", b"placeholder")
    with http_server(bucket.handle) as url:
        bucket.client = storage.Client(project="p", credentials=AnonymousCredentials(),
                                       client_options={"api_endpoint": url})
        yield bucket


def registry_of(bucket: Bucket) -> Registry:
    return Registry(HOME, storage_client=bucket.client)


def stored_json(bucket: Bucket, name: str):
    return json.loads(bucket.objects[f"serving/penguins/{name}"][0])


def test_changes_on_gcs_are_writes_conditional_on_the_generation_read(bucket):
    registry = registry_of(bucket)
    assert [v.version for v in registry.read().versions] == [1, 2, 3]  # the migration lists the version folders
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.95))
    registry.promote(1, "production")
    registry.promote(2, "production")
    assert registry.rollback("production").version == 1
    assert stored_json(bucket, "labels.json") == {"production": 1}
    assert stored_json(bucket, "registry.json")["aliases"]["production"]["history"][-1]["action"] == "rollback"
    writes = [(wanted, status) for name, wanted, status in bucket.uploads if name.endswith("registry.json")]
    assert writes[0] == ("0", 200)  # the first write: only if there is no registry.json yet
    assert all(wanted not in (None, "0") and status == 200 for wanted, status in writes[1:])
    assert [name.rsplit("/", 1)[1] for name, wanted, _ in bucket.uploads if wanted is None] == ["labels.json"] * 5


def test_a_write_that_lost_the_race_is_applied_again_to_the_newer_record(bucket):
    registry = registry_of(bucket)
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.9))

    def someone_else_promotes(data: bytes) -> bytes:
        plain = json.loads(data)
        plain["aliases"]["shadow"] = {"history": [{"version": 2, "action": "promote", "at": ""}]}
        return json.dumps(plain).encode()

    bucket.interfere = someone_else_promotes
    registry.promote(1, "production")
    assert [status for name, _, status in bucket.uploads if name.endswith("registry.json")][-2:] == [412, 200]
    assert registry.labels() == {"production": 1, "shadow": 2}
    assert stored_json(bucket, "labels.json") == {"production": 1, "shadow": 2}


def test_threads_promoting_on_gcs_at_once_lose_nothing(bucket):
    registry = registry_of(bucket)
    registry.register(1, blessed(0.9))
    registry.register(2, blessed(0.9))
    errors = []

    def promote(alias: str) -> None:
        try:
            own = Registry(HOME, storage_client=bucket.client)
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
    assert stored_json(bucket, "labels.json") == {"t0": 2, "t1": 2, "t2": 2}
