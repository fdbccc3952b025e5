"""Loaded model versions and the folder watcher that keeps them current.

A `Servable` is one SavedModel version: its signatures (input and output
specs, TF Serving method names) and a `run` that feeds numpy arrays. The
`ModelManager` watches `<base>/<name>/` like TF Serving's file-system source:
every `poll_seconds` it lists the numeric version folders, applies the version
policy (latest, all, or specific versions), loads and warms up the versions
it lacks, then swaps the set of servables in one assignment. A request holds
the servable it started with, so swapping never fails a request in flight,
and answers after the swap come from the new version.

Labels (`production`, `canary`, ...) map to versions through a YAML/JSON file
re-read on every poll: `serve.labels_file` when set, else the registry's own
`<base>/<name>/labels.json` (components.common.registry) whenever it exists, so
a server follows `tfpipe models promote` and `rollback` with no setting. Every
version a label names is loaded, whatever the version policy. A label is never
trusted blindly: one that names a version the server cannot serve (not on disk,
still being copied, failing to load) stays where it was, as TF Serving refuses
such a change, and the refusal is logged and shown in the model's status.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf
import yaml
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components.common.registry import LABELS_FILE
from components.common.schema import LIST_PADDING, Feature, Schema
from components.common.signatures import DTYPES
from components.serve.errors import NotFound, RequestError

log = logging.getLogger("tfpipe.serve")
WARMUP = "assets.extra/tf_serving_warmup_requests"
SCHEMA = "assets.extra/schema.json"  # the schema of the examples the version was trained on, when export wrote it
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Signature:
    name: str
    method: str
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]
    function: object = field(repr=False)
    # what a null, or an input left out, reads as (Feature.default_value); empty without a schema
    defaults: dict[str, object] = field(default_factory=dict)
    # the list inputs (`[batch, longest]`) and what pads their rows (schema.LIST_PADDING); empty without a schema
    lists: dict[str, object] = field(default_factory=dict)


class Servable:
    """One loaded version of a model, and the schema it was trained on when the version carries one."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self.loaded = tf.saved_model.load(str(path))
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = next(m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags).signature_def
        self.schema = Schema.read(str(path / SCHEMA)) if (path / SCHEMA).exists() else None
        self.signatures = {}
        for name, function in self.loaded.signatures.items():
            _, inputs = function.structured_input_signature
            lists = self._lists(inputs)
            self.signatures[name] = Signature(name, self.signature_defs[name].method_name, dict(inputs),
                                              dict(function.structured_outputs), function,
                                              self._defaults(inputs), lists)

    def _fits(self, inputs: dict[str, tf.TensorSpec]) -> dict[str, Feature]:
        """The schema's features that `inputs` takes as raw features: one value per example of the feature's
        type, or a list per example as `[batch, longest]`."""
        if self.schema is None:
            return {}
        return {f.name: f for f in self.schema.inputs
                if f.name in inputs and inputs[f.name].shape.rank == (2 if f.is_list else 1)
                and inputs[f.name].dtype == DTYPES[f.type]}

    def _lists(self, inputs: dict[str, tf.TensorSpec]) -> dict[str, object]:
        return {name: LIST_PADDING[f.element_type] for name, f in self._fits(inputs).items() if f.is_list}

    def _defaults(self, inputs: dict[str, tf.TensorSpec]) -> dict[str, object]:
        """The schema's missing-value defaults of the inputs that take raw features (a list's is empty)."""
        fits = self._fits(inputs)
        return {name: value for name, value in self.schema.serving_defaults().items() if name in fits} if fits else {}

    @property
    def key(self) -> str:
        """The examples' key column (`ingest.key`) the version was trained with; "" when it names none."""
        return self.schema.key if self.schema is not None else ""

    def signature(self, name: str) -> Signature:
        name = name or "serving_default"
        if name not in self.signatures:
            raise NotFound(f"signature {name!r} not found in version {self.version}; it has "
                           f"{sorted(self.signatures)}")
        return self.signatures[name]

    def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {k: tf.constant(v, dtype=signature.inputs[k].dtype) for k, v in inputs.items()}
        try:
            outputs = signature.function(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise RequestError(f"signature {signature.name!r} rejected the inputs: {_reason(e)}") from None
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self) -> int:
        """Replays the export's warmup PredictionLogs, so the first real request finds the graphs ready."""
        path = self.path / WARMUP
        if not path.exists():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            signature = self.signature(request.model_spec.signature_name)
            self.run(signature, {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
            count += 1
        return count


def _reason(error: Exception) -> str:
    """The line of a TensorFlow error that says what was wrong, without graph and node noise."""
    lines = [line.strip() for line in str(error).splitlines()]
    useful = [line for line in lines if line and not line.startswith(("[[", "Graph execution error", "Detected at",
                                                                        "File ", "{{"))]
    return (useful[-1] if useful else lines[0])[:300]


@dataclass
class VersionState:
    state: Literal["LOADING", "AVAILABLE", "END"]  # TF Serving's names
    error: str = ""


@dataclass(frozen=True)
class RefusedLabel:
    """A label the labels file moved to a version that cannot be served: it stays at `kept` (None: unserved)."""

    label: str
    version: int
    kept: int | None
    why: str  # not on disk, not loaded yet, or the load's error

    def __str__(self) -> str:
        stays = f"it stays at version {self.kept}" if self.kept is not None else "it is not served"
        return f"label {self.label!r} names version {self.version}, which is not available ({self.why}); {stays}"


@dataclass
class _Failure:
    """A version that failed to load: the folder as it was then, and when it may be tried again."""
    fingerprint: tuple
    failures: int
    retry_at: float


def fingerprint(folder: Path) -> tuple:
    """Every file's (path, size, mtime) under `folder`: a copy still in progress changes it, a finished one not."""
    entries = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            stat = path.stat()
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class ModelManager:
    """TF Serving's availability-preserving policy over a folder of versions.

    A version is tried when its folder has stopped changing (the same
    fingerprint on two polls in a row, or at the first poll); one that fails
    to load is reported in the status with its error and tried again only
    when its folder changes, no sooner than a backoff that doubles with each
    failure. Nothing is unloaded for a version that failed: with the latest
    policy the server keeps the newest version that loads, so a half-copied
    or broken newer folder leaves the serving one in place; versions the labels
    file names are served beside it. A version whose folder is removed is
    unloaded. A label moved to a version that is not available keeps its
    previous version loaded and pointed at until the new one is.
    """

    def __init__(self, base: str, name: str = "", policy: str = "latest", versions: tuple[int, ...] = (),
                 labels_file: str = "", poll_seconds: float = 1.0):
        self.base = Path(base)
        self.name = name or self.base.name
        self.policy, self.versions = policy, tuple(versions)
        # the registry's labels, unless another file is named; that one must exist, the registry's may not yet
        self.labels_file, self.labels_required = Path(labels_file or self.base / LABELS_FILE), bool(labels_file)
        self.poll_seconds = poll_seconds
        self.servables: dict[int, Servable] = {}
        self.labels: dict[str, int] = {}
        self.refused: dict[str, RefusedLabel] = {}
        self.states: dict[int, VersionState] = {}
        self._absent: dict[int, VersionState] = {}  # states of versions not on disk that a label names
        self._failures: dict[int, _Failure] = {}
        self._seen: dict[int, tuple] | None = None  # each unloaded version's fingerprint at the previous poll
        self.polls = 0  # the watcher's passes so far: what waiting for the next one waits on
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_disk(self) -> list[int]:
        """Every version folder with a SavedModel, whatever the policy: a label may name any of them."""
        return sorted(int(p.name) for p in self.base.iterdir() if re.fullmatch(r"\d+", p.name) and
                      (p / "saved_model.pb").exists())

    def poll(self) -> None:
        """One pass of the watcher: load what the policy wants and can load, swap, unload what it no longer wants."""
        if not self.base.is_dir():  # gone for a moment (a remount, a slow disk): keep serving what is loaded
            log.error("serve: %s is not a folder now; keeping versions %s", self.base, sorted(self.servables))
            return
        on_disk = self.on_disk()
        seen, first = {}, self._seen is None
        for version in on_disk:
            if version not in self.servables:
                try:
                    seen[version] = fingerprint(self.base / str(version))
                except OSError:  # a file vanished while we looked: still changing
                    seen[version] = ()
        settled = {v for v, f in seen.items() if f and (first or self._seen.get(v) == f)}
        self._seen = seen
        current = dict(self.servables)
        wanted = self._read_labels()

        def available(version: int) -> bool:
            return version in current or (version in settled and self._load(version, seen[version], current))

        if self.policy == "latest":
            keep = next(({v} for v in reversed(on_disk) if available(v)), set())
        else:
            keep = {v for v in on_disk if (self.policy == "all" or v in self.versions) and available(v)}
        # A labelled version (the registry's production after a rollback, say) is served beside the policy's.
        keep |= {v for v in sorted(set(wanted.values()) & set(on_disk) - keep) if available(v)}
        for version in set(self._failures) - set(on_disk):  # a broken folder removed: forget it
            del self._failures[version]
            self.states.pop(version, None)
        labels = self._accept(wanted, keep, set(current) & set(on_disk), on_disk)
        keep |= set(labels.values())  # a refused label's previous version stays
        # The swap, in assignments that each leave every label's version loaded: the old labels' and the new
        # versions together, then the new labels, then the new set alone.
        self.servables = {v: s for v, s in current.items() if v in keep | set(self.labels.values())}
        self.labels = labels
        self.servables = {v: s for v, s in current.items() if v in keep}
        for version in set(current) - keep:
            self.states[version] = VersionState("END")
            log.info("serve: %s version %d unloaded", self.name, version)

    def _load(self, version: int, folder: tuple, into: dict[int, Servable]) -> bool:
        """Loads and warms up `version` into `into` unless it failed before on this same folder or is backing off."""
        failure = self._failures.get(version)
        if failure is not None and (failure.fingerprint == folder or time.monotonic() < failure.retry_at):
            return False
        self.states[version] = VersionState("LOADING")
        try:
            servable = Servable(self.base / str(version), version)
            warmed = servable.warm_up()
        except Exception as e:  # a broken version must not take the server down; it is reported instead
            failures = failure.failures + 1 if failure else 1
            backoff = min(self.poll_seconds * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            self._failures[version] = _Failure(folder, failures, time.monotonic() + backoff)
            message = f"failed to load: {_reason(e)}"
            self.states[version] = VersionState("END", message)
            log.error("serve: %s version %d %s (attempt %d; tried again when its folder changes, not before "
                      "%.1f s)", self.name, version, message, failures, backoff)
            return False
        self._failures.pop(version, None)
        into[version] = servable
        self.states[version] = VersionState("AVAILABLE")
        log.info("serve: %s version %d available (%d warmup requests)", self.name, version, warmed)
        return True

    def _read_labels(self) -> dict[str, int]:
        """{label: version} as the labels file says now; the previous labels when it cannot be read."""
        if not self.labels_required and not self.labels_file.exists():
            return {}  # a registry without aliases yet
        try:
            labels = yaml.safe_load(self.labels_file.read_text()) or {}
            return {str(k): int(v) for k, v in labels.items()}
        except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as e:
            log.error("serve: labels file %s unreadable (%s); keeping the previous labels", self.labels_file, e)
            return self.labels

    def _accept(self, wanted: dict[str, int], keep: set[int], loaded: set[int], on_disk: list[int]) -> dict[str, int]:
        """The labels to serve: each where the file says if that version is in `keep`, else where it was (if
        still `loaded`). Refusals are logged when they change and shown as the named version's status."""
        labels, refused = {}, {}
        for label, version in sorted(wanted.items()):
            if version in keep:
                labels[label] = version
                continue
            kept = self.labels.get(label)
            kept = kept if kept in keep | loaded else None
            if kept is not None:
                labels[label] = kept
            why = "not on disk" if version not in on_disk else \
                self.states[version].error if version in self._failures else "not loaded yet"
            refused[label] = RefusedLabel(label, version, kept, why)
        for label, refusal in refused.items():
            if self.refused.get(label) != refusal:
                log.error("serve: %s %s", self.name, refusal)
        for label, version in labels.items():
            if self.labels.get(label) != version:
                log.info("serve: %s label %r -> version %d", self.name, label, version)
        self.refused = refused
        self._show_absent(on_disk)
        return labels

    def _show_absent(self, on_disk: list[int]) -> None:
        """Gives each version a refused label names that is not on disk a status saying so, and takes it back
        once no label names it (a version that arrived has a status of its own). Unchanged statuses are left in
        place: a status request reads `states` from another thread."""
        wanted: dict[int, VersionState] = {}
        for refusal in self.refused.values():
            if refusal.version not in on_disk:
                said = wanted.get(refusal.version)
                wanted[refusal.version] = VersionState("END", f"{said.error}; {refusal}" if said else str(refusal))
        for version, state in self._absent.items():
            if self.states.get(version) is not state:
                continue  # the version has a status of its own now
            if wanted.get(version) == state:
                wanted[version] = state
            elif version not in wanted:
                del self.states[version]
        self.states.update(wanted)
        self._absent = wanted

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise NotFound(f"Servable not found for request: model {name!r} (this server serves {self.name!r})")

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        self.check_name(name)
        servables = self.servables
        if label is not None:
            if label in self.refused and label not in self.labels:
                raise NotFound(f"model {name!r}: {self.refused[label]}; labels: {sorted(self.labels)}")
            if label not in self.labels:
                raise NotFound(f"label {label!r} of model {name!r} not found; labels: {sorted(self.labels)}")
            version = self.labels[label]
        if version is None:
            if not servables:
                raise NotFound(f"Servable not found for request: Latest({name}): no version loaded yet")
            return servables[max(servables)]
        if version not in servables:
            raise NotFound(f"Servable not found for request: Specific({name}, {version}); loaded versions: "
                           f"{sorted(servables)}")
        return servables[version]

    @property
    def ready(self) -> bool:
        return bool(self.servables)

    def start(self) -> None:
        log.info("serve: %s follows the labels in %s%s", self.name, self.labels_file,
                 "" if self.labels_required or self.labels_file.exists() else " once the registry writes them")
        self.poll()
        self._thread = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # the watcher outlives any one bad pass
                log.exception("serve: polling %s failed", self.base)
            self.polls += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
