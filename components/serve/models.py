"""Loaded model versions and the folder watcher that keeps them current.

A `Servable` is one SavedModel version: its signatures (input and output
specs, TF Serving method names) and a `run` that feeds numpy arrays. The
`ModelManager` watches `<base>/<name>/` like TF Serving's file-system source:
every `poll_seconds` it lists the numeric version folders, applies the version
policy (latest, all, or specific versions), loads and warms up the versions
it lacks, then swaps the set of servables in one assignment. A request holds
the servable it started with, so swapping never fails a request in flight,
and answers after the swap come from the new version. Labels (`stable`,
`canary`, ...) map to versions through an optional YAML/JSON file, re-read on
every poll.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components.common.errors import TfpipeError
from components.serve.tensors import RequestError

log = logging.getLogger("tfpipe.serve")
WARMUP = "assets.extra/tf_serving_warmup_requests"


class NotFound(TfpipeError):
    """No such model, version, label or signature: HTTP 404, gRPC NOT_FOUND."""


@dataclass(frozen=True)
class Signature:
    name: str
    method: str
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]
    function: object = field(repr=False)


class Servable:
    """One loaded version of a model."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self.loaded = tf.saved_model.load(str(path))
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = next(m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags).signature_def
        self.signatures = {}
        for name, function in self.loaded.signatures.items():
            _, inputs = function.structured_input_signature
            self.signatures[name] = Signature(name, self.signature_defs[name].method_name, dict(inputs),
                                              dict(function.structured_outputs), function)

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
    state: str  # LOADING, AVAILABLE, END (TF Serving's names)
    error: str = ""


class ModelManager:
    def __init__(self, base: str, name: str = "", policy: str = "latest", versions: tuple[int, ...] = (),
                 labels_file: str = ""):
        self.base = Path(base)
        self.name = name or self.base.name
        self.policy, self.versions, self.labels_file = policy, tuple(versions), labels_file
        self.servables: dict[int, Servable] = {}
        self.labels: dict[str, int] = {}
        self.states: dict[int, VersionState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_disk(self) -> list[int]:
        if not self.base.is_dir():
            return []
        return sorted(int(p.name) for p in self.base.iterdir() if re.fullmatch(r"\d+", p.name) and
                      (p / "saved_model.pb").exists())

    def wanted(self, available: list[int]) -> list[int]:
        if self.policy == "all":
            return available
        if self.policy == "specific":
            return [v for v in available if v in self.versions]
        return available[-1:]

    def poll(self) -> None:
        """One pass of the watcher: load what the policy wants and is missing, swap, forget the rest."""
        wanted = self.wanted(self.on_disk())
        current = dict(self.servables)
        for version in wanted:
            if version in current or self.states.get(version, VersionState("")).state == "END":
                continue
            self.states[version] = VersionState("LOADING")
            try:
                servable = Servable(self.base / str(version), version)
                warmed = servable.warm_up()
            except Exception as e:  # a broken version must not take the server down; it is reported instead
                log.error("serve: version %d of %s failed to load: %s", version, self.name, e)
                self.states[version] = VersionState("END", f"failed to load: {e}")
                continue
            current[version] = servable
            self.states[version] = VersionState("AVAILABLE")
            log.info("serve: %s version %d available (%d warmup requests)", self.name, version, warmed)
        kept = {v: s for v, s in current.items() if v in wanted}
        self.servables = kept  # the swap: one assignment
        for version in set(current) - set(kept):
            self.states[version] = VersionState("END")
            log.info("serve: %s version %d unloaded", self.name, version)
        self.labels = self._read_labels()

    def _read_labels(self) -> dict[str, int]:
        if not self.labels_file:
            return {}
        try:
            labels = yaml.safe_load(Path(self.labels_file).read_text()) or {}
            return {str(k): int(v) for k, v in labels.items()}
        except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as e:
            log.error("serve: labels file %s unreadable (%s); keeping the previous labels", self.labels_file, e)
            return self.labels

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise NotFound(f"Servable not found for request: model {name!r} (this server serves {self.name!r})")

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        self.check_name(name)
        servables = self.servables
        if label is not None:
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

    def start(self, poll_seconds: float = 1.0) -> None:
        self.poll()
        self._thread = threading.Thread(target=self._watch, args=(poll_seconds,), name="model-watcher", daemon=True)
        self._thread.start()

    def _watch(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.poll()
            except Exception:  # the watcher outlives any one bad pass
                log.exception("serve: polling %s failed", self.base)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
