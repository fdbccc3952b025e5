"""Where a registry record is kept, and how a change to it is made safe against concurrent writers.

Local folders: an exclusive `fcntl.flock` on `registry.lock` around a read, change and rename. gs://:
no locks; the write is conditional on the generation that was read, and retried on the newer record
(components.common.registry's docstring has the whole story).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from components.common import io
from components.common.registry_records import GCS_ATTEMPTS, RegistryError


class LocalStore:
    """registry.json on a local disk, changed under an exclusive flock on a lock file beside it."""

    def __init__(self, path: str):
        self.path = path
        self.lock_path = os.path.join(os.path.dirname(path), "registry.lock")

    def read(self, path: str = "") -> bytes | None:
        try:
            with open(path or self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_folder(self, path: str) -> bool:
        return os.path.isdir(path)

    def versions(self, home: str) -> list[int]:
        names = os.listdir(home) if os.path.isdir(home) else []
        return sorted(int(n) for n in names if n.isdigit() and os.path.exists(f"{home}/{n}/saved_model.pb"))

    def created(self, folder: str) -> str:
        stamp = os.path.getmtime(folder)
        return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="seconds")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, apply: Callable[[bytes | None], bytes | None], after: Callable[[bytes], None]) -> None:
        """`apply(current)` gives the new content (None: nothing to write); `after(final)` runs before the lock
        goes, on the new content or, when there was nothing to write, on the current one (if any)."""
        with self._locked():
            current = self.read()
            new = apply(current)
            if new is not None:
                io.write_bytes(self.path, new)
            final = new if new is not None else current
            if final is not None:
                after(final)

    def put(self, path: str, data: bytes) -> None:
        io.write_bytes(path, data)


class GcsStore:
    """registry.json on Cloud Storage, written only if nobody wrote it since it was read (generation match).

    It speaks to Cloud Storage with google-cloud-storage, not tf.io.gfile: gfile has no generations.
    """

    def __init__(self, path: str, client=None):
        self.path = path
        self._client = client

    def client(self):
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client()
        return self._client

    def _blob(self, path: str):
        bucket, _, name = path[len("gs://"):].partition("/")
        return self.client().bucket(bucket).blob(name)

    def _read(self, path: str) -> tuple[bytes | None, int]:
        """The object and its generation; (None, 0) when there is none (generation 0: "must not exist")."""
        from google.api_core import exceptions

        blob = self._blob(path)
        try:
            data = blob.download_as_bytes()
        except exceptions.NotFound:
            return None, 0
        return data, int(blob.generation)

    def read(self, path: str = "") -> bytes | None:
        return self._read(path or self.path)[0]

    def exists(self, path: str) -> bool:
        return self._blob(path).exists()

    def is_folder(self, path: str) -> bool:
        """Whether any object lies under `path/` (Cloud Storage has no folders, only names with slashes)."""
        bucket, _, prefix = path[len("gs://"):].partition("/")
        pages = self.client().list_blobs(bucket, prefix=f"{prefix}/", delimiter="/", max_results=1).pages
        return any(page.prefixes or page.num_items for page in pages)

    def versions(self, home: str) -> list[int]:
        bucket, _, prefix = home[len("gs://"):].partition("/")
        pages = self.client().list_blobs(bucket, prefix=f"{prefix}/", delimiter="/")
        folders = set()
        for page in pages.pages:
            folders |= set(page.prefixes)
        numbers = [p.rstrip("/").rsplit("/", 1)[-1] for p in folders]
        return sorted(int(n) for n in numbers if n.isdigit() and self.exists(f"{home}/{n}/saved_model.pb"))

    def created(self, folder: str) -> str:
        return ""

    def update(self, apply: Callable[[bytes | None], bytes | None], after: Callable[[bytes], None]) -> None:
        from google.api_core import exceptions

        for attempt in range(GCS_ATTEMPTS):
            current, generation = self._read(self.path)
            new = apply(current)
            if new is None:
                if current is not None:
                    after(current)
                return
            try:
                self._blob(self.path).upload_from_string(new, content_type="application/json",
                                                         if_generation_match=generation)
            except exceptions.PreconditionFailed:
                time.sleep(min(0.02 * 2 ** attempt, 1.0))
                continue
            after(new)
            # A slower writer may have put older labels over these; re-rendered from what is there now.
            latest = self.read()
            if latest is not None and latest != new:
                after(latest)
            return
        raise RegistryError(f"{self.path}: {GCS_ATTEMPTS} attempts to write it each found that another writer "
                            "had changed it first; nothing was changed, try again")

    def put(self, path: str, data: bytes) -> None:
        self._blob(path).upload_from_string(data, content_type="application/json")


def store_for(path: str, storage_client=None) -> LocalStore | GcsStore:
    """The store of a registry.json at `path`."""
    if path.startswith("gs://"):
        return GcsStore(path, storage_client)
    if io.is_remote(path):
        raise RegistryError(f"{path}: the registry needs a local folder (file locks) or gs:// (generation "
                            "preconditions) so that concurrent changes are not lost; this file system has neither")
    return LocalStore(path)
