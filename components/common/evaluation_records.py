"""What the evaluate step writes and others read: `metrics.json`, `blessing.json`, and the checks of a gate.

Typed, frozen records with `from_dict` and `to_json`. The files are what they
have always been, byte for byte: the registry reads an evaluation folder
(components.common.registry_records), the pipeline logs its metrics to KFP
(components.evaluate.artifacts), and earlier runs' files stay readable. A
`blessing.json` written before `verdict` existed is read from `blessed`.

`Check` is one check of a gate: the blessing's thresholds (evaluate) and the
infra check's canaries (serve.infra) alike.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from components.common.errors import TfpipeError

Verdict = Literal["blessed", "not blessed", "unchecked"]
BLESSED, NOT_BLESSED, UNCHECKED = get_args(Verdict)
CheckKind = Literal["at_least", "at_most", "max_worse", "max_worse_relative",  # evaluate's thresholds
                    "available", "answered", "max_difference"]  # the infra check's status and canaries
Outcome = Literal["pass", "fail", "skipped"]
Task = Literal["classification", "regression"]
# The order metrics.json has always listed an overall result's entries in (classification, then regression's own).
OVERALL_ORDER = ("count", "loss", "accuracy", "balanced_accuracy", "macro_f1", "per_class", "confusion_matrix", "auc",
                 "pr_auc", "macro_auc", "roc", "pr", "calibration", "ece", "mae", "rmse", "r2")
STRUCTURED = ("per_class", "confusion_matrix", "roc", "pr", "calibration")


class RecordError(TfpipeError):
    """An evaluation file does not hold what the evaluate step writes."""


def _mapping(plain: Any, where: str) -> dict:
    if not isinstance(plain, dict):
        raise RecordError(f"{where}: expected an object, got {type(plain).__name__}")
    return plain


def _fields(cls, plain: Any, where: str) -> dict:
    """`plain`'s entries for `cls`'s fields: every field without a default there, no others."""
    plain = _mapping(plain, where)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing := [n for n in required if n not in plain]:
        raise RecordError(f"{where}: no {', '.join(missing)}; expected {', '.join(names)}")
    if unknown := sorted(set(plain) - set(names)):
        raise RecordError(f"{where}: unknown {', '.join(unknown)}; expected {', '.join(names)}")
    return plain


def _one_of(value: Any, allowed: tuple, where: str):
    if value not in allowed:
        raise RecordError(f"{where}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _flat(cls, plain: Any, where: str):
    """A record of plain fields (numbers, strings, lists as tuples), numbers kept as written (5 stays 5)."""
    plain = _fields(cls, plain, where)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in plain.items()})


@dataclass(frozen=True)
class Check:
    """One check of a gate: what was measured, against which threshold (and baseline), and the outcome."""

    metric: str  # a metric name (evaluate), or what the infra check tried ("status", "rest predict canary 0")
    check: CheckKind
    threshold: float | None
    value: float | None
    baseline: float | None
    verdict: Outcome
    reason: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, plain: Any, where: str) -> Check:
        check = _flat(cls, plain, where)
        _one_of(check.check, get_args(CheckKind), f"{where}.check")
        _one_of(check.verdict, get_args(Outcome), f"{where}.verdict")
        return check


@dataclass(frozen=True)
class BaselineRef:
    """The registry's version a model was compared with (components.common.registry_records.Baseline)."""

    model: str
    version: int | None
    why: str
    blessed_at: str
    examples: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Blessing:
    """blessing.json: `blessed` stays the one boolean readers branch on; `verdict` says which of the three."""

    verdict: Verdict
    baseline: BaselineRef | None
    note: str | None
    checks: tuple[Check, ...]

    @property
    def blessed(self) -> bool:
        return self.verdict == BLESSED

    def to_json(self) -> dict:
        return {"blessed": self.blessed, "verdict": self.verdict,
                "baseline": self.baseline.to_json() if self.baseline else None, "note": self.note,
                "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_dict(cls, plain: Any, where: str = "blessing.json") -> Blessing:
        plain = _mapping(plain, where)
        if "verdict" not in plain:  # written before there were three verdicts
            plain = {**plain, "verdict": BLESSED if plain.get("blessed") else NOT_BLESSED}
        verdict = _one_of(plain["verdict"], get_args(Verdict), f"{where}.verdict")
        baseline = plain.get("baseline")
        checks = plain.get("checks", [])
        if not isinstance(checks, list):
            raise RecordError(f"{where}.checks: expected a list, got {type(checks).__name__}")
        return cls(verdict, _flat(BaselineRef, baseline, f"{where}.baseline") if baseline else None,
                   plain.get("note"), tuple(Check.from_dict(c, f"{where}.checks[{i}]") for i, c in enumerate(checks)))

    @classmethod
    def from_json(cls, text: str, where: str = "blessing.json") -> Blessing:
        return cls.from_dict(json.loads(text), where)


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class RocCurve:
    """An ROC curve: empty, with `auc` None, when the examples hold only one outcome."""

    auc: float | None
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]


@dataclass(frozen=True)
class PrCurve:
    """A precision-recall curve by rising threshold; `auc` is the average precision."""

    auc: float | None
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    thresholds: tuple[float, ...]


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """Reliability of the top-class confidence, and the expected calibration error."""

    bins: tuple[CalibrationBin, ...]
    ece: float

    def to_json(self) -> dict:
        return {"bins": [dataclasses.asdict(b) for b in self.bins], "ece": self.ece}

    @classmethod
    def from_dict(cls, plain: Any, where: str) -> Calibration:
        plain = _fields(cls, plain, where)
        return cls(tuple(_flat(CalibrationBin, b, f"{where}.bins[{i}]") for i, b in enumerate(plain["bins"])),
                   plain["ece"])


@dataclass(frozen=True)
class Overall:
    """The metrics of one set of examples (the whole test split, or a slice without its curves).

    `values` holds every single number by metric name (loss, accuracy, auc, mae, ...; None where undefined);
    classification adds per-class scores, the confusion matrix and, with curves, ROC, PR and calibration.
    """

    count: int
    values: dict[str, float | None]
    per_class: dict[str, ClassScores] = dataclasses.field(default_factory=dict)
    confusion_matrix: tuple[tuple[int, ...], ...] = ()
    roc: dict[str, RocCurve] = dataclasses.field(default_factory=dict)
    pr: dict[str, PrCurve] = dataclasses.field(default_factory=dict)
    calibration: Calibration | None = None

    def scalars(self) -> dict[str, float]:
        """The single numbers, flat (per-class precision / recall / F1 included), for gates, KFP `Metrics` and
        TensorBoard scalars; undefined ones left out."""
        out = {"count": float(self.count), **{k: float(v) for k, v in self.values.items() if v is not None}}
        for name, scores in self.per_class.items():
            out |= {f"precision/{name}": scores.precision, f"recall/{name}": scores.recall, f"f1/{name}": scores.f1}
        return out

    def to_json(self) -> dict:
        plain: dict[str, Any] = {"count": self.count, **self.values}
        if self.per_class or self.confusion_matrix:
            plain["per_class"] = {c: dataclasses.asdict(s) for c, s in self.per_class.items()}
            plain["confusion_matrix"] = [list(row) for row in self.confusion_matrix]
        if self.calibration is not None:
            plain["roc"] = {c: dataclasses.asdict(r) for c, r in self.roc.items()}
            plain["pr"] = {c: dataclasses.asdict(r) for c, r in self.pr.items()}
            plain["calibration"] = self.calibration.to_json()
        rank = {k: i for i, k in enumerate(OVERALL_ORDER)}
        return dict(sorted(plain.items(), key=lambda item: rank.get(item[0], len(rank))))

    @classmethod
    def from_dict(cls, plain: Any, where: str) -> Overall:
        plain = _mapping(plain, where)
        if not isinstance(plain.get("count"), int):
            raise RecordError(f"{where}.count: expected the number of examples, got {plain.get('count')!r}")
        values = {k: v for k, v in plain.items() if k not in (*STRUCTURED, "count")}
        if bad := [k for k, v in values.items() if v is not None and not isinstance(v, (int, float))]:
            raise RecordError(f"{where}: {', '.join(bad)}: expected numbers")

        def curves(kind, key: str) -> dict:
            return {c: _flat(kind, r, f"{where}.{key}.{c}") for c, r in _mapping(plain.get(key, {}), where).items()}

        calibration = plain.get("calibration")
        return cls(plain["count"], values,
                   {c: _flat(ClassScores, s, f"{where}.per_class.{c}")
                    for c, s in _mapping(plain.get("per_class", {}), f"{where}.per_class").items()},
                   tuple(tuple(row) for row in plain.get("confusion_matrix", ())),
                   curves(RocCurve, "roc"), curves(PrCurve, "pr"),
                   Calibration.from_dict(calibration, f"{where}.calibration") if calibration is not None else None)


@dataclass(frozen=True)
class SliceMetrics:
    """One slice that holds examples: its feature, its name, how many examples, and their scalar metrics."""

    feature: str
    slice: str
    count: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class MetricsDocument:
    """metrics.json: the overall metrics with curves, per-slice metrics, the model and split evaluated, and the
    baseline's scalar metrics on the same split (None without a baseline)."""

    model: str
    task: Task
    overall: Overall
    # read with these defaults from a document written before they were
    examples: str = ""
    split: str = "test"
    classes: tuple[str, ...] = ()
    slices: tuple[SliceMetrics, ...] = ()
    slices_note: str = ""
    baseline: dict[str, float] | None = None

    def to_json(self) -> dict:
        return {"model": self.model, "examples": self.examples, "split": self.split, "task": self.task,
                "classes": list(self.classes), "overall": self.overall.to_json(),
                "slices": [dataclasses.asdict(s) for s in self.slices], "slices_note": self.slices_note,
                "baseline": self.baseline}

    @classmethod
    def from_dict(cls, plain: Any, where: str = "metrics.json") -> MetricsDocument:
        plain = _fields(cls, plain, where)
        slices = plain.get("slices", [])
        if not isinstance(slices, list):
            raise RecordError(f"{where}.slices: expected a list, got {type(slices).__name__}")
        return cls(plain["model"], _one_of(plain["task"], get_args(Task), f"{where}.task"),
                   Overall.from_dict(plain["overall"], f"{where}.overall"), plain.get("examples", ""),
                   plain.get("split", "test"), tuple(plain.get("classes", ())),
                   tuple(_flat(SliceMetrics, s, f"{where}.slices[{i}]") for i, s in enumerate(slices)),
                   plain.get("slices_note", ""), plain.get("baseline"))

    @classmethod
    def from_json(cls, text: str, where: str = "metrics.json") -> MetricsDocument:
        return cls.from_dict(json.loads(text), where)
