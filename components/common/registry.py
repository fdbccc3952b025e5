"""The model registry: every exported version with its evaluation and lineage, and aliases that point at versions.

One model's folder, `<base>/<name>/` (TF Serving's layout), holds:

    1/ 2/ 3/ ...          the versions export writes (`<version>/saved_model.pb`)
    registry.json         this registry: versions, aliases with their history, the blessing record it replaced
    labels.json           {alias: version}, what a server of this folder follows (re-read on every poll)
    registry.lock         local folders only: the lock every writer holds

Every change is a read-modify-write of `registry.json` that re-reads the file
while it holds the right to write, so two changes at once never lose one:

- local paths: an exclusive `fcntl.flock` on `registry.lock` (it blocks other
  processes and other threads alike); inside it the record is read, changed,
  written to a temporary name and renamed into place, then `labels.json` is
  rewritten the same way. Readers never lock: a rename shows them the old file
  or the new one, never half of one. (flock is advisory and, on NFS, only as
  good as the server's lock support.)
- gs://: there are no locks; the write is conditional on the object generation
  that was read (`ifGenerationMatch`, 0 when the file must not exist yet). When
  another writer got there first the write is refused (HTTP 412) and the change
  is applied again to the newer record, up to `GCS_ATTEMPTS` times.
- other remote file systems have neither, so the registry refuses them.

`registry.json` is the truth and `labels.json` its rendering: a writer killed
between the two writes leaves labels that disagree, so every change (a promotion
that changes nothing included) renders the labels again from the record it
holds, and `tfpipe models list` shows any disagreement. A server never needs
the two to agree: it refuses labels naming a version it cannot serve
(components.serve.models).

A folder without `registry.json` (models exported before the registry) reads as
a registry of its version folders, their blessing unknown, and the blessing
record `blessed.json` that the evaluate step wrote: until a blessed version is
registered, that record is the newest blessed model and so the baseline. The
first change writes `registry.json`; `blessed.json` is left as it was.

Alias names follow Vertex Model Registry's rule (`[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]`)
so that the same names work there (components.common.vertex_registry); `v<number>`
is reserved for the versions themselves.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from components.common import io
from components.common.errors import TfpipeError

FORMAT = 1
PRODUCTION, CANDIDATE = "production", "candidate"
LABELS_FILE = "labels.json"  # beside registry.json: what a server of the folder follows (components.serve.models)
# The evaluate step's verdicts, and "unknown" for versions registered without one.
BLESSED, NOT_BLESSED, UNCHECKED, UNKNOWN = "blessed", "not blessed", "unchecked", "unknown"
VERDICTS = (BLESSED, NOT_BLESSED, UNCHECKED, UNKNOWN)
PROMOTE, ROLLBACK = "promote", "rollback"
ALIAS_NAME = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]")
GCS_ATTEMPTS = 20
# The metrics the table shows, in this order, when a version has them.
KEY_METRICS = ("accuracy", "auc", "macro_f1", "loss", "rmse", "mae", "r2")


class RegistryError(TfpipeError):
    """The registry cannot do what was asked; nothing in it changed."""


class UnknownAlias(RegistryError):
    """No such alias."""


class UnknownVersion(RegistryError):
    """No such version in the registry, or its folder is gone."""


class NoEarlierVersion(RegistryError):
    """A rollback of an alias that has pointed at no other version."""


class CorruptRegistry(RegistryError):
    """registry.json (or the blessing record it migrates) cannot be read as a registry."""


class UnknownModel(RegistryError):
    """The model's folder is not there: a mistyped base is refused before anything is created."""


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def config_hash(config_json: str) -> str:
    """A short digest of a run config's JSON (`RunConfig.to_json()`): equal configs, equal hashes."""
    return hashlib.sha256(json.dumps(json.loads(config_json), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate step said of the model a version was exported from."""

    verdict: str = UNKNOWN
    metrics: dict[str, float] = field(default_factory=dict)
    model: str = ""  # the Keras model evaluated: what a later evaluation reloads as its baseline
    task: str = ""  # classification or regression
    folder: str = ""  # evaluate's output folder (metrics.json, blessing.json, report.html)

    @property
    def blessed(self) -> bool:
        return self.verdict == BLESSED

    @classmethod
    def read(cls, folder: str) -> Evaluation:
        """From the evaluate step's output folder: `metrics.json` and `blessing.json`."""
        folder = folder.rstrip("/")
        try:
            metrics, blessing = io.read_json(f"{folder}/metrics.json"), io.read_json(f"{folder}/blessing.json")
            overall = metrics["overall"]
            verdict = blessing.get("verdict") or (BLESSED if blessing["blessed"] else NOT_BLESSED)
            if verdict not in VERDICTS:
                raise ValueError(f"verdict {verdict!r} is none of {', '.join(VERDICTS)}")
            return cls(verdict=verdict, model=str(metrics.get("model", "")), task=str(metrics.get("task", "")),
                       metrics={k: float(v) for k, v in overall.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "count"},
                       folder=folder)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise RegistryError(f"{folder}: not an evaluate step's output ({type(e).__name__}: {e}); expected "
                                "metrics.json with 'overall' and blessing.json with 'verdict'") from None

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "metrics": dict(self.metrics), "model": self.model, "task": self.task,
                "folder": self.folder}

    @classmethod
    def from_json(cls, plain: Any, where: str) -> Evaluation:
        plain = _object(plain, where)
        verdict = _get(plain, "verdict", str, where, UNKNOWN)
        if verdict not in VERDICTS:
            raise CorruptRegistry(f"{where}.verdict: expected one of {', '.join(VERDICTS)}, got {verdict!r}")
        metrics = _get(plain, "metrics", dict, where, {})
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
            raise CorruptRegistry(f"{where}.metrics: expected numbers")
        return cls(verdict, {str(k): float(v) for k, v in metrics.items()}, _get(plain, "model", str, where, ""),
                   _get(plain, "task", str, where, ""), _get(plain, "folder", str, where, ""))


@dataclass(frozen=True)
class Lineage:
    """Where a version came from."""

    data_span: str = ""  # the source as resolved (a {SPAN} or date filled in)
    source_fingerprint: str = ""  # the source files' names, sizes and times (components.common.fingerprint)
    run_id: str = ""  # the pipeline run (KFP's job id) or whoever registered it
    config_hash: str = ""  # config_hash(RunConfig.to_json())
    # the ingest output the model was trained on: its statistics are what the next run's data is validated against
    examples: str = ""
    # a team's model module that built it (train.model.module): "<module> sha256:<first 12 hex digits>"
    model_module: str = ""

    def to_json(self) -> dict:
        return {"data_span": self.data_span, "source_fingerprint": self.source_fingerprint, "run_id": self.run_id,
                "config_hash": self.config_hash, "examples": self.examples, "model_module": self.model_module}

    @classmethod
    def from_json(cls, plain: Any, where: str) -> Lineage:
        plain = _object(plain, where)
        return cls(*(_get(plain, k, str, where, "") for k in ("data_span", "source_fingerprint", "run_id",
                                                              "config_hash", "examples", "model_module")))


@dataclass(frozen=True)
class VersionRecord:
    """One exported version: `<base>/<name>/<version>/`."""

    version: int
    created: str
    evaluation: Evaluation = Evaluation()
    lineage: Lineage = Lineage()
    vertex_model: str = ""  # projects/.../models/<id>@<version id>, once uploaded to Vertex Model Registry

    @property
    def blessed(self) -> bool:
        return self.evaluation.blessed

    def to_json(self) -> dict:
        return {"version": self.version, "created": self.created, "evaluation": self.evaluation.to_json(),
                "lineage": self.lineage.to_json(), "vertex_model": self.vertex_model}

    @classmethod
    def from_json(cls, plain: Any, where: str) -> VersionRecord:
        plain = _object(plain, where)
        version = _get(plain, "version", int, where)
        if version < 0:
            raise CorruptRegistry(f"{where}.version: expected an integer >= 0, got {version}")
        return cls(version, _get(plain, "created", str, where, ""),
                   Evaluation.from_json(plain.get("evaluation", {}), f"{where}.evaluation"),
                   Lineage.from_json(plain.get("lineage", {}), f"{where}.lineage"),
                   _get(plain, "vertex_model", str, where, ""))


@dataclass(frozen=True)
class AliasChange:
    version: int  # where the alias points after the change
    action: str  # promote or rollback
    at: str

    def to_json(self) -> dict:
        return {"version": self.version, "action": self.action, "at": self.at}

    @classmethod
    def from_json(cls, plain: Any, where: str) -> AliasChange:
        plain = _object(plain, where)
        action = _get(plain, "action", str, where)
        if action not in (PROMOTE, ROLLBACK):
            raise CorruptRegistry(f"{where}.action: expected {PROMOTE} or {ROLLBACK}, got {action!r}")
        return cls(_get(plain, "version", int, where), action, _get(plain, "at", str, where, ""))


@dataclass(frozen=True)
class Alias:
    """A name that points at a version, with every change it went through (oldest first).

    A promotion remembers the version it moved away from; a rollback goes back to
    the most recent one remembered and forgets it, so rolling back twice after
    promoting 1, 2, 3 gives 2, then 1.
    """

    name: str
    history: tuple[AliasChange, ...]

    @property
    def version(self) -> int:
        return self.history[-1].version

    @property
    def previous(self) -> tuple[int, ...]:
        """The versions a rollback goes back to, the next one last."""
        return _replay(self.history, self.name)[1]

    def promoted(self, version: int) -> Alias:
        return replace(self, history=(*self.history, AliasChange(version, PROMOTE, now())))

    def rolled_back(self) -> Alias:
        earlier = self.previous
        if not earlier:
            raise NoEarlierVersion(f"alias {self.name!r} has pointed only at version {self.version}: there is "
                                   "no earlier version to roll back to")
        return replace(self, history=(*self.history, AliasChange(earlier[-1], ROLLBACK, now())))

    def to_json(self) -> dict:
        return {"version": self.version, "previous": list(self.previous),
                "history": [c.to_json() for c in self.history]}

    @classmethod
    def from_json(cls, name: str, plain: Any, where: str) -> Alias:
        plain = _object(plain, where)
        history = tuple(AliasChange.from_json(c, f"{where}.history[{i}]")
                        for i, c in enumerate(_get(plain, "history", list, where)))
        if not history:
            raise CorruptRegistry(f"{where}.history: an alias has at least one change")
        _replay(history, name, where)
        if plain.get("version", history[-1].version) != history[-1].version:
            raise CorruptRegistry(f"{where}.version: {plain['version']} disagrees with its history, which ends at "
                                  f"version {history[-1].version}")
        return cls(name, history)


@dataclass(frozen=True)
class Moved(Alias):
    """An alias as a promotion or rollback left it, with what that change found while it held the registry:
    where the alias pointed before (None: it is new), and how the labels file disagreed with the registry then
    ("" where it agreed; the change rewrote it either way)."""

    was: int | None = None
    repaired: str = ""


def _replay(history: tuple[AliasChange, ...], name: str, where: str = "") -> tuple[int, tuple[int, ...]]:
    """(current version, the versions to roll back to) after the changes."""
    earlier: list[int] = []
    current = None
    for i, change in enumerate(history):
        if change.action == PROMOTE:
            if current is not None and current != change.version:
                earlier.append(current)
        elif not earlier or earlier.pop() != change.version:
            raise CorruptRegistry(f"{where or name}.history[{i}]: a rollback to version {change.version} that the "
                                  "alias never pointed at just before")
        current = change.version
    return current, tuple(earlier)


@dataclass(frozen=True)
class LegacyBlessing:
    """The blessing record (`blessed.json`) of a folder that had no registry: a blessed model with no version."""

    model: str
    metrics: dict[str, float]
    evaluation: str
    blessed_at: str

    def to_json(self) -> dict:
        return {"model": self.model, "metrics": dict(self.metrics), "evaluation": self.evaluation,
                "blessed_at": self.blessed_at}

    @classmethod
    def from_json(cls, plain: Any, where: str) -> LegacyBlessing:
        plain = _object(plain, where)
        metrics = _get(plain, "metrics", dict, where, {})
        return cls(_get(plain, "model", str, where),
                   {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                   _get(plain, "evaluation", str, where, ""), _get(plain, "blessed_at", str, where, ""))


@dataclass(frozen=True)
class Baseline:
    """The model a new one is compared with: what evaluate reloads and scores on the same test split."""

    model: str  # the Keras model (model.keras) to reload
    metrics: dict[str, float]  # as recorded when it was evaluated (evaluate scores it again)
    version: int | None  # None: the blessing record of a folder without a registry
    why: str  # "production", "newest blessed", "blessed.json"
    blessed_at: str
    examples: str = ""  # the ingest output it was trained on: the statistics new data is validated against

    def to_json(self) -> dict:
        return {"model": self.model, "version": self.version, "why": self.why, "blessed_at": self.blessed_at,
                "examples": self.examples}


@dataclass(frozen=True)
class RegistryRecord:
    """The whole of registry.json."""

    name: str
    versions: tuple[VersionRecord, ...] = ()  # by version, ascending
    aliases: tuple[Alias, ...] = ()  # by name
    legacy_blessing: LegacyBlessing | None = None

    def find(self, version: int) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == version), None)

    def alias(self, name: str) -> Alias | None:
        return next((a for a in self.aliases if a.name == name), None)

    def labels(self) -> dict[str, int]:
        return {a.name: a.version for a in self.aliases}

    def aliases_of(self, version: int) -> list[str]:
        return [a.name for a in self.aliases if a.version == version]

    def newest_blessed(self) -> VersionRecord | None:
        return next((v for v in reversed(self.versions) if v.blessed), None)

    def with_version(self, record: VersionRecord) -> RegistryRecord:
        others = [v for v in self.versions if v.version != record.version]
        return replace(self, versions=tuple(sorted([*others, record], key=lambda v: v.version)))

    def with_alias(self, alias: Alias) -> RegistryRecord:
        others = [a for a in self.aliases if a.name != alias.name]
        return replace(self, aliases=tuple(sorted([*others, alias], key=lambda a: a.name)))

    def to_json(self) -> dict:
        plain = {"format": FORMAT, "name": self.name, "versions": [v.to_json() for v in self.versions],
                 "aliases": {a.name: a.to_json() for a in self.aliases}}
        if self.legacy_blessing is not None:
            plain["blessed_json"] = self.legacy_blessing.to_json()
        return plain

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, plain: Any, where: str) -> RegistryRecord:
        plain = _object(plain, where)
        if plain.get("format") != FORMAT:
            raise CorruptRegistry(f"{where}: format {plain.get('format')!r}; this tfpipe reads format {FORMAT}")
        versions = tuple(VersionRecord.from_json(v, f"{where}: versions[{i}]")
                         for i, v in enumerate(_get(plain, "versions", list, where)))
        numbers = [v.version for v in versions]
        if len(set(numbers)) != len(numbers):
            raise CorruptRegistry(f"{where}: versions: a version is listed twice ({numbers})")
        aliases = tuple(Alias.from_json(str(name), a, f"{where}: aliases.{name}")
                        for name, a in sorted(_get(plain, "aliases", dict, where).items()))
        for alias in aliases:
            for version in {c.version for c in alias.history} - set(numbers):
                raise CorruptRegistry(f"{where}: aliases.{alias.name} names version {version}, which is not in "
                                      "versions")
        legacy = plain.get("blessed_json")
        return cls(_get(plain, "name", str, where, ""), tuple(sorted(versions, key=lambda v: v.version)), aliases,
                   LegacyBlessing.from_json(legacy, f"{where}: blessed_json") if legacy is not None else None)


def _object(plain: Any, where: str) -> dict:
    if not isinstance(plain, dict):
        raise CorruptRegistry(f"{where}: expected a JSON object, got {type(plain).__name__}")
    return plain


def _get(plain: dict, key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in plain:
        if default is ...:
            raise CorruptRegistry(f"{where}: {key!r} is missing")
        return default
    value = plain[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptRegistry(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def check_alias_name(alias: str) -> None:
    if not isinstance(alias, str) or not ALIAS_NAME.fullmatch(alias) or re.fullmatch(r"v\d+", alias):
        raise RegistryError(f"alias {alias!r}: expected 2-128 characters, a lowercase letter first, then letters, "
                            "digits or '-', ending in a lowercase letter, digit or '-' (Vertex Model Registry's "
                            "rule); 'v<number>' names a version")


# ---------------------------------------------------------------------------------------------------- storage


class _LocalStore:
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


class _GcsStore:
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


def _store(path: str, storage_client=None):
    if path.startswith("gs://"):
        return _GcsStore(path, storage_client)
    if io.is_remote(path):
        raise RegistryError(f"{path}: the registry needs a local folder (file locks) or gs:// (generation "
                            "preconditions) so that concurrent changes are not lost; this file system has neither")
    return _LocalStore(path)


# ---------------------------------------------------------------------------------------------------- registry


class Registry:
    """The registry of the model whose versions live in `home` (`<base>/<name>`)."""

    def __init__(self, home: str, labels_file: str = "", storage_client=None):
        self.home = str(home).rstrip("/")
        self.name = self.home.rsplit("/", 1)[-1]
        self.path = f"{self.home}/registry.json"
        self.labels_file = labels_file or f"{self.home}/{LABELS_FILE}"
        self.store = _store(self.path, storage_client)

    # reading

    def read(self) -> RegistryRecord:
        """The record as it is now; a folder without registry.json reads as migrated (nothing is written)."""
        return self._parse(self.store.read())

    def get(self, version: int) -> VersionRecord:
        return self._version(self.read(), version)

    def resolve(self, alias: str) -> int:
        """The version `alias` points at."""
        return self._alias(self.read(), alias).version

    def labels(self) -> dict[str, int]:
        return self.read().labels()

    def written_labels(self) -> dict[str, int] | None:
        """What the labels file says now (what a server follows); None when it is missing or not {alias: version}."""
        data = self.store.read(self.labels_file)
        try:
            plain = yaml.safe_load(data) if data is not None else None
        except yaml.YAMLError:
            return None
        if not isinstance(plain, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                   for v in plain.values()):
            return None
        return {str(k): v for k, v in plain.items()}

    def disagreement(self, record: RegistryRecord) -> str:
        """How the labels file differs from `record`'s aliases, in words; "" when it agrees."""
        return labels_disagreement(record.labels(), self.written_labels(), self.labels_file)

    def baseline(self) -> Baseline | None:
        """The model to compare a new one with: the `production` version; without one, the newest blessed
        version; without one, the blessing record of a folder from before the registry; else None.

        A version registered without the Keras model it was exported from cannot be evaluated again, so it
        is passed over.
        """
        record = self.read()
        production = record.alias(PRODUCTION)
        candidates = [(record.find(production.version), PRODUCTION)] if production else []
        candidates += [(v, "newest blessed") for v in reversed(record.versions) if v.blessed]
        for version, why in candidates:
            if version is not None and version.evaluation.model:
                return Baseline(version.evaluation.model, dict(version.evaluation.metrics), version.version, why,
                                version.created, version.lineage.examples)
        legacy = record.legacy_blessing
        if legacy is not None:
            return Baseline(legacy.model, dict(legacy.metrics), None, "blessed.json", legacy.blessed_at)
        return None

    def next_version(self) -> int:
        """One above the highest version registered or on disk (1 for the first)."""
        record = self.read()
        return max([v.version for v in record.versions] + self.store.versions(self.home), default=0) + 1

    def check_home(self) -> None:
        """Refuses a model folder that is not there (a mistyped --base), before anything is read or created."""
        if not self.store.is_folder(self.home):
            raise UnknownModel(f"{self.home}: no such folder; expected a model's folder of numbered versions, "
                               "<base>/<name>")

    # changing

    def register(self, version: int, evaluation: Evaluation = Evaluation(), lineage: Lineage = Lineage(),
                 created: str = "") -> VersionRecord:
        """Records an exported version (its folder must hold saved_model.pb)."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise RegistryError(f"version {version!r}: expected an integer >= 0")
        self._check_present(version)
        entry = VersionRecord(version, created or now(), evaluation, lineage)

        def change(record: RegistryRecord) -> RegistryRecord:
            existing = record.find(version)
            # A version the migration found on disk (nothing known of it) is completed, not registered again.
            if existing is not None and (existing.evaluation, existing.lineage) != (Evaluation(), Lineage()):
                raise RegistryError(f"{self.path}: version {version} is already registered (created "
                                    f"{existing.created}); versions are never registered twice")
            return record.with_version(entry)

        self._update(change)
        return entry

    def promote(self, version: int, alias: str, force: bool = False,
                before_commit: Callable[[VersionRecord, Alias], None] | None = None) -> Moved:
        """Points `alias` at `version`, remembering where it pointed before; the record is left as it is if it
        points there already, but the labels file is rewritten all the same (it may have drifted).

        `production` takes only blessed versions (or ones whose blessing is unknown) unless `force`.
        `before_commit(version, alias)` runs once the change is known to be valid and before it is written
        (components.common.vertex_registry moves the alias on Vertex there); if it raises, nothing changes.
        """
        check_alias_name(alias)

        def change(record: RegistryRecord) -> RegistryRecord | None:
            target = self._version(record, version)
            self._check_present(version)
            if alias == PRODUCTION and target.evaluation.verdict in (NOT_BLESSED, UNCHECKED) and not force:
                raise RegistryError(f"{self.path}: version {version} of {self.name} is "
                                    f"{target.evaluation.verdict}: it is not promoted to {PRODUCTION} unless "
                                    "forced (--force)")
            current = record.alias(alias)
            unchanged = current is not None and current.version == version
            moved = current if unchanged else current.promoted(version) if current else \
                Alias(alias, (AliasChange(version, PROMOTE, now()),))
            if before_commit is not None:  # even when unchanged: it repairs a remote copy that drifted
                before_commit(target, moved)
            return None if unchanged else record.with_alias(moved)

        return self._update(change).moved(alias)

    set_alias = promote

    def rollback(self, alias: str, before_commit: Callable[[VersionRecord, Alias], None] | None = None) -> Moved:
        """Points `alias` back at the version it pointed at before its last promotion."""

        def change(record: RegistryRecord) -> RegistryRecord:
            moved = self._alias(record, alias).rolled_back()
            target = self._version(record, moved.version)
            self._check_present(moved.version)
            if before_commit is not None:
                before_commit(target, moved)
            return record.with_alias(moved)

        return self._update(change).moved(alias)

    def set_vertex_model(self, version: int, resource: str) -> VersionRecord:
        """Records where the version lives in Vertex Model Registry (`.../models/<id>@<version id>`)."""

        def change(record: RegistryRecord) -> RegistryRecord:
            return record.with_version(replace(self._version(record, version), vertex_model=resource))

        return self._update(change).after.find(version)

    def write_labels(self) -> str:
        """Rewrites the labels file from the aliases (a change does this itself; this repairs or creates it)."""
        self.store.put(self.labels_file, _labels_bytes(self.read()))
        return self.labels_file

    # inside

    def _update(self, change: Callable[[RegistryRecord], RegistryRecord | None]) -> _Change:
        """Applies `change` to the record as it is while this writer holds the right to write it, then renders
        the labels file from the record as written (or as found, when `change` returns None)."""
        self.check_home()
        done: list[_Change] = []

        def apply(current: bytes | None) -> bytes | None:
            record = self._parse(current)
            drift = self.disagreement(record)  # read under the lock: what a crash between two writes left
            changed = change(record)
            done[:] = [_Change(record, changed if changed is not None else record, drift)]
            return changed.to_bytes() if changed is not None else None

        def after(final: bytes) -> None:
            self.store.put(self.labels_file, _labels_bytes(self._parse(final)))

        self.store.update(apply, after)
        return done[0]

    def _parse(self, data: bytes | None) -> RegistryRecord:
        if data is None:
            return self._migrated()
        try:
            plain = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptRegistry(f"{self.path}: not valid JSON ({e}); fix it, or move it away to rebuild the "
                                  "registry from the version folders") from None
        return RegistryRecord.from_json(plain, self.path)

    def _migrated(self) -> RegistryRecord:
        versions = tuple(VersionRecord(v, self.store.created(f"{self.home}/{v}"))
                         for v in self.store.versions(self.home))
        record_path = f"{self.home}/blessed.json"
        data = self.store.read(record_path)
        legacy = None
        if data is not None:
            try:
                legacy = LegacyBlessing.from_json(json.loads(data), record_path)
            except (ValueError, UnicodeDecodeError) as e:
                raise CorruptRegistry(f"{record_path}: unreadable blessing record ({e}); expected JSON like "
                                      '{"model": ".../model.keras", "metrics": {...}}; fix or delete it') from None
        return RegistryRecord(self.name, versions, (), legacy)

    def _check_present(self, version: int) -> None:
        if not self.store.exists(f"{self.home}/{version}/saved_model.pb"):
            raise UnknownVersion(f"{self.home}/{version}/saved_model.pb: not there; version {version} of "
                                 f"{self.name} cannot be registered or served")

    def _version(self, record: RegistryRecord, version: int) -> VersionRecord:
        found = record.find(version)
        if found is None:
            known = ", ".join(str(v.version) for v in record.versions) or "none"
            raise UnknownVersion(f"{self.path}: no version {version} of {self.name} (registered: {known})")
        return found

    def _alias(self, record: RegistryRecord, alias: str) -> Alias:
        found = record.alias(alias)
        if found is None:
            known = ", ".join(a.name for a in record.aliases) or "none"
            raise UnknownAlias(f"{self.path}: no alias {alias!r} for {self.name} (aliases: {known})")
        return found


@dataclass(frozen=True)
class _Change:
    """One read-modify-write as its writer saw it: the record before and after, and how the labels file
    disagreed with the record before ("" where it agreed)."""

    before: RegistryRecord
    after: RegistryRecord
    drift: str

    def moved(self, alias: str) -> Moved:
        now, was = self.after.alias(alias), self.before.alias(alias)
        return Moved(now.name, now.history, was.version if was is not None else None, self.drift)


def labels_disagreement(registered: dict[str, int], written: dict[str, int] | None, labels_file: str) -> str:
    """In words, how the labels a server follows differ from the registry's aliases; "" when they agree."""
    name = labels_file.rsplit("/", 1)[-1]
    if written is None:
        return f"{name} is missing or unreadable" if registered else ""
    differ = [f"{label} -> {written.get(label, 'none')} in {name}, {registered.get(label, 'none')} in the registry"
              for label in sorted(registered.keys() | written.keys()) if written.get(label) != registered.get(label)]
    return "; ".join(differ)


def _labels_bytes(record: RegistryRecord) -> bytes:
    """The labels file `components.serve.models` reads (YAML, of which this JSON is a part)."""
    return (json.dumps(record.labels(), indent=2, sort_keys=True) + "\n").encode()


# ---------------------------------------------------------------------------------------------------- commands


def render_table(record: RegistryRecord, where: str = "", drift: str = "") -> str:
    """`tfpipe models list`: one row per version, newest first, with aliases, blessing, key metrics, lineage;
    `drift` says how the labels file disagrees with the record."""
    metrics = [m for m in KEY_METRICS if any(m in v.evaluation.metrics for v in record.versions)][:4]
    modules = any(v.lineage.model_module for v in record.versions)  # a team's model: which module built it
    header = ["version", "aliases", "blessing", *metrics, "data span", *(["model module"] if modules else []),
              "created (UTC)"]
    rows = []
    for v in reversed(record.versions):
        module = [v.lineage.model_module.rsplit("/", 1)[-1] or "-"] if modules else []
        rows.append([str(v.version), ",".join(record.aliases_of(v.version)) or "-", v.evaluation.verdict,
                     *(f"{v.evaluation.metrics[m]:.4f}" if m in v.evaluation.metrics else "-" for m in metrics),
                     v.lineage.data_span or "-", *module, v.created.replace("T", " ")[:16] or "-"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{record.name}{f'  ({where})' if where else ''}: {len(record.versions)} versions"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    for alias in record.aliases:
        if alias.previous:
            lines.append(f"{alias.name}: version {alias.version}, rollback to {alias.previous[-1]} "
                         f"(then {', '.join(map(str, reversed(alias.previous[:-1]))) or 'none'})")
    if record.legacy_blessing is not None and not record.newest_blessed():
        lines.append(f"blessed.json: {record.legacy_blessing.model} (blessed {record.legacy_blessing.blessed_at}, "
                     "no version on record): the baseline until a blessed version is registered")
    if drift:
        lines.append(f"LABELS DISAGREE: {drift}; a server follows the labels file, and any promote or rollback "
                     "(one that changes nothing included) rewrites it from the registry")
    return "\n".join(lines)


def list_models(base: str, as_json: bool = False) -> str:
    """What `tfpipe models list --base <base>/<name> [--json]` prints: the table, or the registry's record."""
    registry = Registry(base)
    registry.check_home()
    record = registry.read()
    if as_json:
        return json.dumps(record.to_json(), indent=2)
    return render_table(record, registry.path, registry.disagreement(record))


def promote_model(base: str, version: int, alias: str, force: bool = False, vertex=None) -> str:
    """`tfpipe models promote --base ... --version N --alias production`; `vertex` (a DeployConfig) moves the
    alias in Vertex Model Registry too."""
    registry = Registry(base)
    if vertex is not None:
        from components.common.vertex_registry import VertexRegistry

        moved = VertexRegistry(registry, vertex).promote(version, alias, force)
    else:
        moved = registry.promote(version, alias, force)
    was = " (new alias)" if moved.was is None else " (already)" if moved.was == moved.version else \
        f" (was {moved.was})"
    return f"{registry.name}: {alias} -> version {moved.version}{was}; {_labels_written(registry, moved)}"


def rollback_model(base: str, alias: str, vertex=None) -> str:
    """`tfpipe models rollback --base ... --alias production`."""
    registry = Registry(base)
    if vertex is not None:
        from components.common.vertex_registry import VertexRegistry

        moved = VertexRegistry(registry, vertex).rollback(alias)
    else:
        moved = registry.rollback(alias)
    return f"{registry.name}: {alias} -> version {moved.version} (rolled back from {moved.was}); " \
           f"{_labels_written(registry, moved)}"


def _labels_written(registry: Registry, moved: Moved) -> str:
    repaired = f", repaired ({moved.repaired})" if moved.repaired else ""
    return f"labels in {registry.labels_file}{repaired}"
