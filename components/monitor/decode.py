"""Logged requests back into features, by the training schema, and the model's answers into predictions.

A `PredictionLog` holds one request of any API: a predict's named tensors
(`serving_default`: one tensor per feature; `predict_examples`: serialized
`tf.train.Example`s), or a classify's or regress's examples. Each becomes
rows of feature values in a `Traffic` (one window's requests), and its
answer the predicted value per row: the `classes` output of a predict (the
predicted label) or the best-scored class of a classify for a classifier,
`predictions` or the regress value for a regressor.

A request that no longer fits the schema (a feature it lacks, values of
another type or more than one per example, tensors of different batch sizes,
bytes that do not decode, a predicted class the model does not have) is
counted as an `Anomaly` of its kind and feature; its other features still
count. Nothing a log holds raises; the decoder remembers, over every window,
which features the requests carried and whether any predicted class was the
model's, so that a log of another model is told apart (`mismatch`) from one
whose requests drifted.

For quality once labels arrive, each row answered with scores (a predict's
`probabilities` or `predictions`, a classify's scores by class, a regress's
value) is kept in the window's `Scored` with its example key: the input
tensor, or the example's feature, named by the training data's `ingest.key`
(components.serve.example_keys), and the values of the sliced features.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from components.common.schema import LIST_PADDING, Schema
from components.common.signatures import OutputName, SignatureName
from components.common.task import Task

EXAMPLES_INPUTS = ("inputs", "examples")  # what a signature of serialized examples names its input


@dataclass
class Scored:
    """The rows answered with scores, for quality once labels arrive: each one's example key ("" when the
    request carried none), its scores (a classifier's probabilities in the task's class order, a regressor's
    value) and the sliced features' values (None where the request lacked one)."""

    keys: list[str] = field(default_factory=list)
    scores: list = field(default_factory=list)
    slices: dict[str, list] = field(default_factory=dict)
    unscored: int = 0  # rows answered without scores (an output_filter that left them out)


@dataclass
class RowFacts:
    """One record's rows: their example keys and sliced values, as the decoder meets them."""

    keys: list[str] | None = None
    slices: dict[str, list] = field(default_factory=dict)


@dataclass
class Traffic:
    """One window's requests as columns: each feature's values, how many rows lacked it, and what did not fit."""

    requests: int = 0
    rows: int = 0
    values: dict[str, list] = field(default_factory=dict)
    missing: Counter = field(default_factory=Counter)
    predictions: list = field(default_factory=list)
    anomalies: Counter = field(default_factory=Counter)  # (kind, feature) -> requests
    messages: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, feature) -> the first one's problem
    scored: Scored = field(default_factory=Scored)


class Decoder:
    def __init__(self, schema: Schema, task: Task, sliced: tuple[str, ...] = ()):
        """`sliced`: the features whose values each scored row keeps, for quality by slice."""
        self.features = {f.name: f for f in schema.inputs}
        self.label, self.task, self.sliced = schema.label, task, sliced
        self.key = schema.key if schema.key not in self.features else ""  # the example key, never a feature
        self.to_label = float if task.kind == "regression" else int if schema.label_feature.type == "int" else str
        self.classes = frozenset(task.classes)
        self.carried: set[str] = set()  # every input name the requests carried, over all windows
        self.known_classes = 0  # predictions that were one of the model's classes
        self.unknown_classes: Counter = Counter()  # and the predicted classes that were none of them

    def mismatch(self) -> str:
        """Why the requests read so far cannot be of a model trained on this schema, in words; "" if they can:
        none of the features they carried is the schema's, or none of the classes predicted is the model's."""
        if self.carried and not self.carried & self.features.keys():
            return (f"the requests carry the features {_few(self.carried)} and the training schema has "
                    f"{_few(self.features)}: none in common")
        if self.unknown_classes and not self.known_classes:
            return (f"the requests were answered with the classes {_few(self.unknown_classes)} and the model's "
                    f"label {self.label!r} has the classes {_few(self.task.classes)}: none in common")
        return ""

    def add(self, record: prediction_log_pb2.PredictionLog, into: Traffic) -> None:
        """Adds one logged request's rows, predictions and anomalies to `into`."""
        seen: dict[tuple[str, str], str] = {}
        facts = RowFacts()
        kind = record.WhichOneof("log_type")
        if kind == "predict_log":
            rows = self._predict(record, into, seen, facts)
            self._scored(self._predict_scores(record.predict_log.response, rows), rows, facts, into)
        elif kind in ("classify_log", "regress_log"):
            rows = self._examples(_examples(getattr(record, kind).request.input), into, seen, facts)
            self._answers(record, kind, rows, into, seen)
            self._scored(self._result_scores(getattr(record, kind).response.result, kind), rows, facts, into)
        else:
            rows = 0
            seen[("unreadable", "")] = f"a {kind or 'empty'} log: only predict, classify and regress are read"
        into.requests += 1
        into.rows += rows
        for key, problem in seen.items():
            into.anomalies[key] += 1
            into.messages.setdefault(key, problem)

    def _predict(self, record, into: Traffic, seen: dict, facts: RowFacts) -> int:
        request, response = record.predict_log.request, record.predict_log.response
        try:
            arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        except (ValueError, TypeError) as e:
            seen[("unreadable", "")] = f"a tensor does not decode: {e}"
            return 0
        if self.key in arrays:
            facts.keys = [_text(k) for k in arrays.pop(self.key).reshape(-1)]
        signature = record.log_metadata.model_spec.signature_name or request.model_spec.signature_name
        if _holds_examples(arrays, signature, self.features):
            serialized = next(iter(arrays.values())).reshape(-1)
            parsed = []
            for i, raw in enumerate(serialized):
                try:
                    parsed.append(tf.train.Example.FromString(raw))
                except message.DecodeError:
                    seen[("unreadable", "")] = f"example {i} does not decode as a tf.train.Example"
            given = facts.keys
            rows = self._examples(parsed, into, seen, facts)
            facts.keys = given or facts.keys  # keys sent beside the examples are the request's
        else:
            rows = self._columns(arrays, into, seen, facts)
        output = OutputName.CLASSES if self.task.kind == "classification" else OutputName.PREDICTIONS
        predicted = tf.make_ndarray(response.outputs[output]).reshape(-1) if output in response.outputs else None
        self._predicted(None if predicted is None else list(predicted), rows, output, into, seen)
        return rows

    def _columns(self, arrays: dict[str, np.ndarray], into: Traffic, seen: dict, facts: RowFacts) -> int:
        sizes = {name: a.shape[0] if a.ndim else 1 for name, a in arrays.items()}
        if len(set(sizes.values())) > 1:
            seen[("batch_mismatch", "")] = f"inputs of different batch sizes: {sizes}"
            return 0
        rows = next(iter(sizes.values()), 0)
        self.carried.update(arrays.keys() - {self.label})  # the key was taken out by _predict
        for name, array in arrays.items():
            if name not in self.features:
                if name != self.label:
                    seen[("unknown_feature", name)] = f"input {name!r} is not a feature of the schema"
                continue
            values = self._column(name, array, seen)
            if values is not None:
                into.values.setdefault(name, []).extend(values)
                if name in self.sliced:
                    facts.slices[name] = values
        for name in self.features.keys() - arrays.keys():
            into.missing[name] += rows
        return rows

    def _column(self, name: str, array: np.ndarray, seen: dict) -> list | None:
        """The values of one tensor by its feature's type, or None (and an anomaly) when they do not fit it."""
        feature = self.features[name]
        if feature.type == "image":
            expected = (feature.image.height, feature.image.width, feature.image.channels)
            if array.dtype == np.uint8 and array.shape[1:] == expected:
                return [True] * len(array)
            seen[("type_mismatch", name)] = f"image {name!r}: {array.dtype} of shape {list(array.shape)}, " \
                                            f"expected uint8 of [batch, {', '.join(map(str, expected))}]"
            return None
        if array.ndim != (2 if feature.is_list else 1):
            expected = "a padded list per example" if feature.is_list else "one value per example"
            seen[("shape_mismatch", name)] = f"{name!r}: shape {list(array.shape)}, expected {expected}"
            return None
        kinds = {"int": "iu", "float": "iuf", "string": "OS", "text": "OS"}[feature.element_type]
        if array.dtype.kind not in kinds:
            seen[("type_mismatch", name)] = f"{name!r}: {array.dtype} values, expected {feature.type}"
            return None
        if feature.is_list:
            padding = LIST_PADDING[feature.element_type]
            kept = ~np.isnan(array) if feature.element_type == "float" else array != padding
            return [_plain(row[keep], feature.element_type) for row, keep in zip(array, kept, strict=True)]
        return _plain(array, feature.type)

    def _examples(self, examples: list, into: Traffic, seen: dict, facts: RowFacts) -> int:
        facts.keys = []
        for example in examples:
            given = example.features.feature
            self.carried.update(given.keys() - {self.label, self.key})
            row = {}
            for name, feature in given.items():
                if name in self.features:
                    row[name] = value = self._value(name, feature, seen)
                    if value is not None:
                        into.values.setdefault(name, []).append(value)
                elif name not in (self.label, self.key):
                    seen[("unknown_feature", name)] = f"feature {name!r} is not a feature of the schema"
            facts.keys.append(_first(given[self.key]) if self.key and self.key in given else "")
            for name in self.sliced:
                facts.slices.setdefault(name, []).append(row.get(name))
            for name in self.features:
                if name not in given or not _count(given[name]):
                    into.missing[name] += 1
        return len(examples)

    def _value(self, name: str, feature: tf.train.Feature, seen: dict):
        """One example's value of a feature, or None: missing (counted by the caller), or an anomaly."""
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value if kind else []
        if not values:
            return None
        if self.features[name].is_list:
            wanted = self.features[name].element_type
            if kind != _KINDS[wanted]:
                seen[("type_mismatch", name)] = f"{name!r}: a {kind}, expected {self.features[name].type}"
                return None
            return _plain(np.asarray(values), wanted)
        if len(values) > 1:
            seen[("shape_mismatch", name)] = f"{name!r}: {len(values)} values in one example, expected one"
            return None
        wanted = self.features[name].type
        allowed = {"int": ("int64_list",), "float": ("float_list", "int64_list")}.get(wanted, ("bytes_list",))
        if kind not in allowed:
            seen[("type_mismatch", name)] = f"{name!r}: a {kind}, expected {wanted}"
            return None
        if wanted == "image":
            return True
        return values[0].decode("utf-8", "replace") if wanted in ("string", "text") else float(values[0])

    def _predict_scores(self, response, rows: int) -> np.ndarray | None:
        name = OutputName.PROBABILITIES if self.task.kind == "classification" else OutputName.PREDICTIONS
        if name not in response.outputs:
            return None
        try:
            scores = tf.make_ndarray(response.outputs[name]).astype(np.float64)
        except (ValueError, TypeError):
            return None
        if self.task.kind == "regression":
            return scores.reshape(-1)
        return scores.reshape(rows, -1) if rows and scores.size % rows == 0 else None

    def _result_scores(self, result, kind: str) -> np.ndarray:
        if kind == "regress_log":
            return np.array([r.value for r in result.regressions], np.float64)
        order = {c: i for i, c in enumerate(self.task.classes)}
        scores = np.zeros((len(result.classifications), len(order)))
        for row, classification in enumerate(result.classifications):
            for c in classification.classes:
                if c.label in order:
                    scores[row, order[c.label]] = c.score
        return scores

    def _scored(self, scores: np.ndarray | None, rows: int, facts: RowFacts, into: Traffic) -> None:
        """Adds the record's rows with their scores to `into.scored`; rows without them are counted."""
        shaped = self.task.kind == "regression" or (scores is not None and scores.ndim == 2 and
                                                    scores.shape[1] == len(self.task.classes))
        if not rows or scores is None or len(scores) != rows or not shaped:
            into.scored.unscored += rows
            return
        scored = into.scored
        keys = facts.keys if facts.keys is not None and len(facts.keys) == rows else [""] * rows
        scored.keys.extend(keys)
        scored.scores.extend(scores)
        for name in self.sliced:
            given = facts.slices.get(name)
            scored.slices.setdefault(name, []).extend(given if given is not None and len(given) == rows
                                                      else [None] * rows)

    def _answers(self, record, kind: str, rows: int, into: Traffic, seen: dict) -> None:
        result = getattr(record, kind).response.result
        if kind == "classify_log":
            predicted = [max(c.classes, key=lambda x: x.score).label if c.classes else None
                         for c in result.classifications]
        else:
            predicted = [r.value for r in result.regressions]
        self._predicted(predicted, rows, "result", into, seen)

    def _predicted(self, predicted: list | None, rows: int, where: str, into: Traffic, seen: dict) -> None:
        if predicted is None or len(predicted) != rows or any(p is None for p in predicted):
            if rows:
                seen[("no_prediction", self.label)] = f"the answer's {where!r} does not hold one prediction for " \
                                                      f"each of the {rows} examples"
            into.missing[self.label] += rows
            return
        try:
            values = [self.to_label(p.decode("utf-8", "replace") if isinstance(p, bytes) else p) for p in predicted]
        except ValueError:
            seen[("type_mismatch", self.label)] = f"predictions {predicted[:3]} are not {self.to_label.__name__}s"
            into.missing[self.label] += rows
            return
        if self.task.kind == "classification":
            unknown = [v for v in values if str(v) not in self.classes]
            self.known_classes += len(values) - len(unknown)
            self.unknown_classes.update(map(str, unknown))
            if unknown:
                seen[("unknown_class", self.label)] = f"predicted class {str(unknown[0])!r} is none of the model's " \
                                                      f"{len(self.classes)} classes"
        into.predictions.extend(values)


_KINDS = {"int": "int64_list", "float": "float_list", "string": "bytes_list"}


def _plain(values: np.ndarray, kind: str) -> list:
    """Values as the window's statistics take them: text for strings, floats for numbers."""
    if kind in ("string", "text"):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    return values.astype(np.float64).tolist()


def _holds_examples(arrays: dict[str, np.ndarray], signature: str, features: dict) -> bool:
    """Whether a predict request carries serialized examples (`predict_examples`) rather than features."""
    if len(arrays) != 1:
        return False
    name, array = next(iter(arrays.items()))
    strings = array.dtype.kind in "OS"
    return strings and (signature == SignatureName.PREDICT_EXAMPLES or
                        (name in EXAMPLES_INPUTS and name not in features))


def _examples(request_input) -> list:
    """A classify or regress request's examples, each with the context merged in, as the server read them."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return list(request_input.example_list.examples)
    if kind != "example_list_with_context":
        return []
    merged = []
    for example in request_input.example_list_with_context.examples:
        one = type(example)()
        one.CopyFrom(request_input.example_list_with_context.context)
        one.MergeFrom(example)
        merged.append(one)
    return merged


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _first(feature: tf.train.Feature) -> str:
    """A feature's first value as text, whatever its kind ("" without one): an example's key."""
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    return _text(values[0]) if values else ""


def _few(names, shown: int = 8) -> str:
    """Names sorted, the first `shown` of them, and how many more."""
    names = sorted(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"[{', '.join(names[:shown])}]{more}"


def _count(feature: tf.train.Feature) -> int:
    kind = feature.WhichOneof("kind")
    return len(getattr(feature, kind).value) if kind else 0
