"""anomalies.json: what validate found, as a typed record the pipeline, the CLI and the report read.

A `Finding` is one check of one feature (or split): what was measured, against
which threshold, and the verdict. Drift, missing fraction, range and domain are
measured for every feature the two data sets share, so a passing measurement
is a finding too (verdict `pass`); the other kinds are findings only when they
happen. The record passes when no finding fails.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Literal, get_args

from components.common.config import AnomalyKind
from components.validate.errors import ValidateError

Verdict = Literal["pass", "warn", "fail"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
KINDS: tuple[str, ...] = get_args(AnomalyKind)


@dataclass(frozen=True)
class Finding:
    kind: AnomalyKind
    verdict: Verdict
    message: str  # one sentence for people
    feature: str = ""  # "" for a split's finding
    split: str = ""
    # What `measured` is: jensen_shannon_divergence, l_infinity, unseen_fraction, range_excess,
    # missing_fraction, rows, and for text (l_infinity of its tokens)
    # jensen_shannon_divergence_bytes_per_value and _tokens_per_value; "" when nothing is measured
    # (a missing feature, a type change).
    statistic: str = ""
    measured: float | None = None
    threshold: float | None = None

    @property
    def subject(self) -> str:
        return self.feature or f"split {self.split}"


@dataclass(frozen=True)
class Anomalies:
    examples: str
    baseline: str  # "" on a first run: nothing to compare with
    findings: tuple[Finding, ...] = ()

    @property
    def validated(self) -> bool:
        return not self.failures

    @property
    def first_run(self) -> bool:
        return not self.baseline

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.verdict == "fail")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.verdict == "warn")

    def headline(self) -> str:
        """One line: passed or failed, and the features that failed with what."""
        if self.first_run:
            return "validated: first run, no baseline to compare with"
        if self.validated:
            return f"validated: no failing anomalies ({len(self.warnings)} warnings)"
        failing = "; ".join(f"{f.subject}: {f.kind}" for f in self.failures)
        return f"NOT validated: {failing}"

    def to_json(self) -> str:
        plain = dataclasses.asdict(self)
        return json.dumps({"validated": self.validated, **plain}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Anomalies:
        try:
            plain = json.loads(text)
            findings = tuple(Finding(**f) for f in plain["findings"])
            record = cls(examples=plain["examples"], baseline=plain["baseline"], findings=findings)
        except (ValueError, KeyError, TypeError) as e:
            raise ValidateError(f"anomalies.json: not a validate record: {e}") from None
        for f in findings:
            if f.kind not in KINDS or f.verdict not in VERDICTS:
                raise ValidateError(f"anomalies.json: unknown kind {f.kind!r} or verdict {f.verdict!r}")
        return record
