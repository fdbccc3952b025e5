"""The model registry: every exported version with its evaluation and lineage, and aliases that point at versions.

One model's folder, `<base>/<name>/` (TF Serving's layout), holds:

    1/ 2/ 3/ ...          the versions export writes (`<version>/saved_model.pb`)
    registry.json         this registry: versions, aliases with their history, the blessing record it replaced
    labels.json           {alias: version}, what a server of this folder follows (re-read on every poll)
    models.config         once a deployment asks for it: the same labels as TF Serving's model config
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

The records are in `registry_records`, the stores in `registry_store`, the `tfpipe models` commands in
`registry_commands`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import yaml

from components.common import tf_serving_config
from components.common.evaluation_records import NOT_BLESSED, UNCHECKED
from components.common.registry_records import (  # noqa: F401 (the registry's API: what its users import)
    CANDIDATE,
    LABELS_FILE,
    PRODUCTION,
    PROMOTE,
    Alias,
    AliasChange,
    Baseline,
    CorruptRegistry,
    Evaluation,
    LegacyBlessing,
    Lineage,
    Moved,
    NoEarlierVersion,
    RegistryError,
    RegistryRecord,
    UnknownAlias,
    UnknownModel,
    UnknownVersion,
    VersionRecord,
    check_alias_name,
    config_hash,
    now,
)
from components.common.registry_store import store_for


class Registry:
    """The registry of the model whose versions live in `home` (`<base>/<name>`)."""

    def __init__(self, home: str, labels_file: str = "", storage_client=None):
        self.home = str(home).rstrip("/")
        self.name = self.home.rsplit("/", 1)[-1]
        self.path = f"{self.home}/registry.json"
        self.labels_file = labels_file or f"{self.home}/{LABELS_FILE}"
        self.tf_serving_config = f"{self.home}/{tf_serving_config.FILE}"
        self.store = store_for(self.path, storage_client)

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

    def register(self, version: int, evaluation: Evaluation | None = None, lineage: Lineage | None = None,
                 created: str = "") -> VersionRecord:
        """Records an exported version (its folder must hold saved_model.pb); unknown evaluation and lineage
        where none is given."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise RegistryError(f"version {version!r}: expected an integer >= 0")
        self._check_present(version)
        entry = VersionRecord(version, created or now(), evaluation or Evaluation(), lineage or Lineage())

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

    def follow_in_tf_serving(self, base_path: str) -> str:
        """Writes TF Serving's model config for this model (components.common.tf_serving_config) at `base_path`,
        this folder as the server sees it, with the aliases as labels; every later change of an alias renders
        it again. Returns its path."""
        self.check_home()
        self.store.put(self.tf_serving_config, tf_serving_config.render(self.name, base_path.rstrip("/"), {}))
        self._update(lambda record: None)  # renders it with the aliases as they are under the lock
        return self.tf_serving_config

    def set_vertex_model(self, version: int, resource: str) -> VersionRecord:
        """Records where the version lives in Vertex Model Registry (`.../models/<id>@<version id>`)."""

        def change(record: RegistryRecord) -> RegistryRecord:
            return record.with_version(replace(self._version(record, version), vertex_model=resource))

        return self._update(change).after.find(version)

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
            record = self._parse(final)
            self.store.put(self.labels_file, _labels_bytes(record))
            config = self.store.read(self.tf_serving_config)
            base_path = tf_serving_config.base_path_of(config) if config is not None else None
            if base_path is not None:  # a deployment follows the labels through TF Serving's config
                self.store.put(self.tf_serving_config, tf_serving_config.render(self.name, base_path,
                                                                                 record.labels()))

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
