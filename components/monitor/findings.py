"""findings.json: what monitor found, as a typed record the CLI, the pipeline and the report read.

The logged requests fall into windows of `window_seconds` (starting at
multiples of it since the epoch, UTC). Each window with requests has its
statistics and a `Measurement` of every feature and of the predictions:
skew against the training data, and drift against the window with requests
before it. A measurement crosses when its distance is above its threshold.
Requests that no longer fit the schema are `Anomaly`s, counted by kind and
feature. Runs of windows without a request are one `Window` with no requests,
so that a gap says so plainly.

With labels (components.monitor.labels), each window's predictions joined to
their labels by example key give its `Quality` measurements, overall and per
slice, beside the production model's blessed evaluation; `LabelCounts` says
what could not be joined and why (no label yet, a late label, no key, a key
predicted again), and a window with fewer labels than `monitor.min_labels`
is inconclusive, never passed. `LabelsRead` counts what the labels source
held that no window used: incomplete rows, keys given twice, and keys no
logged prediction had.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from components.common.config import RetrainOn
from components.monitor.errors import MonitorError

MeasurementKind = Literal["skew", "drift"]
CrossedKind = Literal["skew", "drift", "quality"]
# crossed: a bound crossed; passed: every bound held; inconclusive: too few labels to say (monitor.min_labels);
# unchecked: no bound is set for the metric
Verdict = Literal["crossed", "passed", "inconclusive", "unchecked"]
ReadKind = Literal["request logs", "batch predictions"]
# unknown_feature: a feature the schema lacks; type_mismatch: values of another type than the schema's;
# shape_mismatch: more than one value per example; batch_mismatch: inputs of different batch sizes;
# unreadable: a tensor or example that does not decode; no_prediction: an answer without the predicted value;
# unknown_class: a predicted class that is none of the model's (the training label's) classes
AnomalyKind = Literal["unknown_feature", "type_mismatch", "shape_mismatch", "batch_mismatch", "unreadable",
                      "no_prediction", "unknown_class"]


@dataclass(frozen=True)
class Measurement:
    kind: MeasurementKind
    feature: str  # an input feature, or the label's name for the model's predictions
    prediction: bool
    # l_infinity (categories, a text's tokens), jensen_shannon_divergence (numbers), or
    # jensen_shannon_divergence_bytes_per_value / _tokens_per_value (a text's lengths, as validate names them)
    statistic: str
    measured: float
    threshold: float
    at: str = ""  # l_infinity: the value whose share differs most

    @property
    def crossed(self) -> bool:
        return self.measured > self.threshold

    @property
    def subject(self) -> str:
        return f"predictions ({self.feature})" if self.prediction else self.feature


@dataclass(frozen=True)
class Anomaly:
    kind: AnomalyKind
    feature: str
    requests: int  # how many requests of the window had it
    message: str  # the first such request's problem, as a sentence


@dataclass(frozen=True)
class Quality:
    """One metric of one window's labelled predictions, overall (no feature) or of one slice."""

    metric: str  # accuracy, balanced_accuracy, auc, ece (a binary classifier's calibration); rmse, mae
    value: float | None  # None: undefined (an AUC of labels of one class)
    labels: int  # the labelled predictions it was measured on
    blessed: float | None  # the production model's blessed evaluation's figure
    verdict: Verdict
    reason: str = ""  # the bound crossed (or held), in words
    feature: str = ""
    slice: str = ""

    @property
    def crossed(self) -> bool:
        return self.verdict == "crossed"

    @property
    def subject(self) -> str:
        return f"{self.metric} of {self.feature}={self.slice}" if self.feature else self.metric


@dataclass(frozen=True)
class LabelCounts:
    """A window's predictions against the labels: what was joined, and each reason a prediction was not."""

    predictions: int  # rows answered with scores
    labelled: int  # joined with a label in time: what quality is measured on
    unlabelled: int  # a key no label has (yet)
    late: int  # a label known more than monitor.max_label_delay_seconds after the window ended
    no_key: int  # the request carried no example key
    duplicated: int  # a key predicted again later: the last prediction is the one joined
    unscored: int  # rows answered without scores
    inconclusive: bool  # fewer labelled than monitor.min_labels


@dataclass(frozen=True)
class LabelsRead:
    source: str
    files: int
    rows: int
    used: int  # labels joined to a prediction in some window
    duplicated: int  # rows whose key an earlier row had (the label known last is kept)
    incomplete: int  # rows without a key or a label
    unreadable: int  # rows the reader could not read
    without_prediction: int  # keys no logged prediction of the windows read had
    examples_without_prediction: tuple[str, ...] = ()  # a few of those keys


@dataclass(frozen=True)
class Window:
    start: int  # epoch seconds, UTC
    end: int  # exclusive
    requests: int
    rows: int = 0
    measurements: tuple[Measurement, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()
    drift_against: int | None = None  # the start of the window drift was measured against; None: none before
    statistics: str = ""  # the folder (under the output) with this window's schema.pbtxt and stats.pb
    quality: tuple[Quality, ...] = ()
    labels: LabelCounts | None = None  # None: no labels were given

    @property
    def span(self) -> str:
        return f"{_time(self.start)} to {_time(self.end)}"

    def crossed(self, kind: MeasurementKind) -> tuple[Measurement, ...]:
        return tuple(m for m in self.measurements if m.kind == kind and m.crossed)

    def crossed_quality(self) -> tuple[Quality, ...]:
        return tuple(q for q in self.quality if q.crossed)


@dataclass(frozen=True)
class DamagedFile:
    path: str
    records: int  # read before the damage
    error: str


@dataclass(frozen=True)
class UnfinishedFile:
    """A log file its server never closed (killed, or still writing): its whole records are read."""

    path: str
    records: int  # whole records read
    torn_bytes: int  # after the last whole record: a record cut in the middle of its write


@dataclass(frozen=True)
class Findings:
    log_dir: str
    training: str
    window_seconds: int
    retrain_on: tuple[RetrainOn, ...]
    windows: tuple[Window, ...] = ()
    files: int = 0  # log files read
    damaged_files: tuple[DamagedFile, ...] = ()
    unfinished_files: tuple[UnfinishedFile, ...] = ()
    labels: LabelsRead | None = None
    read: ReadKind = "request logs"  # or batch predictions: `log_dir` is then their folder, a row a "request"

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.windows)

    def crossed_in(self, kind: CrossedKind) -> bool:
        if kind == "quality":
            return any(w.crossed_quality() for w in self.windows)
        return any(w.crossed(kind) for w in self.windows)

    @property
    def crossed(self) -> bool:
        """A threshold was crossed: skew or drift, of a feature or of the predictions, or quality, in any window."""
        return any(self.crossed_in(kind) for kind in get_args(CrossedKind))

    @property
    def retrain(self) -> bool:
        """What `monitor.retrain_on` asks for, given what was crossed."""
        return any(self.crossed_in(kind) for kind in self.retrain_on if kind != "never")

    def headline(self) -> str:
        """One line: what was read, and what crossed where."""
        if not self.requests:
            return f"no requests in the window asked for in {self.log_dir} ({self._files()}): nothing to compare"
        crossed = [f"{w.span}: {m.kind} of {m.subject} ({m.statistic} {m.measured:.3f} > {m.threshold:g})"
                   for w in self.windows for m in w.measurements if m.crossed]
        crossed += [f"{w.span}: quality {q.subject} ({q.reason})" for w in self.windows for q in w.crossed_quality()]
        read = f"{self.requests:,} requests in {sum(1 for w in self.windows if w.requests)} windows ({self._files()})"
        inconclusive = sum(1 for w in self.windows if w.labels is not None and w.labels.inconclusive)
        if inconclusive:
            read += f"; quality inconclusive in {inconclusive} windows (fewer labels than monitor.min_labels)"
        if not crossed:
            return f"no threshold crossed: {read}"
        shown = "; ".join(crossed[:5]) + (f"; and {len(crossed) - 5} more" if len(crossed) > 5 else "")
        return f"THRESHOLD CROSSED{' (retrain)' if self.retrain else ''}: {read}; {shown}"

    def _files(self) -> str:
        damaged, unfinished = self.damaged_files, self.unfinished_files
        torn = sum(u.torn_bytes for u in unfinished)
        files = "log files" if self.read == "request logs" else "predictions files"
        return (f"{self.files} {files}" + (f", {len(damaged)} damaged" if damaged else "") +
                (f", {len(unfinished)} unfinished ({torn:,} bytes torn off)" if unfinished else ""))

    def to_json(self) -> str:
        plain = dataclasses.asdict(self)
        return json.dumps({"crossed": self.crossed, "retrain": self.retrain, **plain}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Findings:
        try:
            plain = json.loads(text)
            windows = tuple(Window(**{**w, "measurements": tuple(Measurement(**m) for m in w["measurements"]),
                                      "anomalies": tuple(Anomaly(**a) for a in w["anomalies"]),
                                      "quality": tuple(Quality(**q) for q in w.get("quality", ())),
                                      "labels": w.get("labels") and LabelCounts(**w["labels"])})
                            for w in plain["windows"])
            labels, retrain_on = plain.get("labels"), plain["retrain_on"]  # one kind, as a string, before lists
            record = cls(log_dir=plain["log_dir"], training=plain["training"], window_seconds=plain["window_seconds"],
                         retrain_on=(retrain_on,) if isinstance(retrain_on, str) else tuple(retrain_on),
                         windows=windows, files=plain["files"],
                         damaged_files=tuple(DamagedFile(**d) for d in plain["damaged_files"]),
                         unfinished_files=tuple(UnfinishedFile(**u) for u in plain.get("unfinished_files", ())),
                         labels=labels and LabelsRead(**{**labels, "examples_without_prediction": tuple(
                             labels["examples_without_prediction"])}), read=plain.get("read", "request logs"))
        except (ValueError, KeyError, TypeError) as e:
            raise MonitorError(f"findings.json: not a monitor record: {e}") from None
        kinds = {m.kind for w in windows for m in w.measurements} - set(get_args(MeasurementKind))
        anomalies = {a.kind for w in windows for a in w.anomalies} - set(get_args(AnomalyKind))
        anomalies |= {q.verdict for w in windows for q in w.quality} - set(get_args(Verdict))
        anomalies |= {record.read} - set(get_args(ReadKind))
        if kinds or anomalies or not set(record.retrain_on) <= set(get_args(RetrainOn)):
            raise MonitorError(f"findings.json: unknown kinds or verdicts {sorted(kinds | anomalies)} or retrain_on "
                               f"{record.retrain_on!r}")
        return record


def _time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
