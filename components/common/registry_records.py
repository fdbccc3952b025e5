"""The registry's records: versions with their evaluation and lineage, aliases with their history, as JSON.

`components.common.registry` reads and changes them (its docstring says how); every field is checked
when a record is read, so a hand-edited or damaged `registry.json` is an error naming the field.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from components.common import io
from components.common.errors import TfpipeError
from components.common.evaluation_records import BLESSED, BaselineRef, Blessing, MetricsDocument, Verdict

FORMAT = 1
PRODUCTION, CANDIDATE = "production", "candidate"
LABELS_FILE = "labels.json"  # beside registry.json: what a server of the folder follows (components.serve.models)
# The evaluate step's verdicts, and "unknown" for versions registered without one.
UNKNOWN = "unknown"
VERDICTS = (*get_args(Verdict), UNKNOWN)
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
            metrics = MetricsDocument.from_dict(io.read_json(f"{folder}/metrics.json"), f"{folder}/metrics.json")
            blessing = Blessing.from_dict(io.read_json(f"{folder}/blessing.json"), f"{folder}/blessing.json")
        except (OSError, ValueError) as e:  # RecordError and JSONDecodeError are ValueErrors
            raise RegistryError(f"{folder}: not an evaluate step's output ({type(e).__name__}: {e}); expected "
                                "metrics.json with 'overall' and blessing.json with 'verdict'") from None
        return cls(verdict=blessing.verdict, model=metrics.model, task=metrics.task, folder=folder,
                   metrics={k: float(v) for k, v in metrics.overall.values.items() if v is not None})

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
    # the training data's schema and statistics (export keeps them in the version folder; an ingest output folder
    # for versions registered by hand): what the next run's data and served traffic are compared with
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
    why: Literal["production", "newest blessed", "blessed.json"]
    blessed_at: str
    # its training data's schema and statistics, kept with the version: what new data is validated against
    examples: str = ""

    def ref(self) -> BaselineRef:
        """What a blessing records of it."""
        return BaselineRef(self.model, self.version, self.why, self.blessed_at, self.examples)


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
