"""The blessing gate, in the spirit of TFX's Evaluator.

`decide` checks value thresholds (a metric at least / at most x) and change
thresholds against the baseline (no worse than it by more than an absolute
or relative amount). With no baseline, the change thresholds are skipped and
the verdict rests on the value thresholds alone, which the checks say.
With no thresholds at all nothing is checked: the verdict is "unchecked",
never a blessing, so the pipeline's `If(blessed)` does not export a model
nobody gated.

The baseline comes from the model registry (components.common.registry): the
`production` version, else the newest blessed one. It is evaluated again on
the same test split, so both numbers describe the same examples.
"""

from __future__ import annotations

from components.common.config import Threshold
from components.common.errors import TfpipeError
from components.common.evaluation_records import (
    BLESSED,
    NOT_BLESSED,
    UNCHECKED,
    BaselineRef,
    Blessing,
    Check,
    CheckKind,
    Verdict,
)
from components.evaluate.metrics import LOWER_IS_BETTER


class EvaluateError(TfpipeError):
    """The model, data or baseline cannot be evaluated as asked."""


UNCHECKED_NOTE = ("no thresholds configured (evaluate.thresholds), so nothing was checked: the model is not "
                  "blessed and will not be exported; set thresholds such as accuracy: {at_least: 0.9}")
KINDS: tuple[CheckKind, ...] = ("at_least", "at_most", "max_worse", "max_worse_relative")


def decide(thresholds: dict[str, Threshold], current: dict[str, float],
           baseline: dict[str, float] | None) -> tuple[Verdict, tuple[Check, ...]]:
    """(verdict, every check): BLESSED when no check fails, UNCHECKED when there is nothing to check."""
    if not thresholds:
        return UNCHECKED, ()
    checks = []
    for metric, t in sorted(thresholds.items()):
        if metric not in current:
            raise EvaluateError(f"evaluate.thresholds.{metric}: no such metric; the evaluation has "
                                f"{', '.join(sorted(current))}")
        value = current[metric]
        for kind in KINDS:
            threshold = getattr(t, kind)
            if threshold is not None:
                checks.append(_check(metric, kind, threshold, value, (baseline or {}).get(metric),
                                     has_baseline=baseline is not None))
    return (BLESSED if all(c.verdict != "fail" for c in checks) else NOT_BLESSED), tuple(checks)


def _check(metric: str, kind: CheckKind, threshold: float, value: float | None, base: float | None,
           has_baseline: bool) -> Check:
    def verdict(ok: bool, reason: str) -> Check:
        return Check(metric, kind, threshold, value, base, "pass" if ok else "fail", reason)

    if value is None:
        return verdict(False, f"{metric} is undefined on this test split")
    if kind == "at_least":
        return verdict(value >= threshold, f"{metric} {value:.6g} {'>=' if value >= threshold else '<'} {threshold:g}")
    if kind == "at_most":
        return verdict(value <= threshold, f"{metric} {value:.6g} {'<=' if value <= threshold else '>'} {threshold:g}")
    if not has_baseline:
        return Check(metric, kind, threshold, value, None, "skipped",
                     "no baseline: this is the first model to be blessed, so only value thresholds apply")
    if base is None:
        return verdict(False, f"the baseline's {metric} is undefined on this test split")
    worse = value - base if metric in LOWER_IS_BETTER else base - value
    allowed = threshold if kind == "max_worse" else threshold * abs(base)
    return verdict(worse <= allowed, f"{metric} {value:.6g} vs baseline {base:.6g}: "
                                     f"{'worse' if worse > 0 else 'not worse'} by {abs(worse):.6g} "
                                     f"(allowed {allowed:.6g})")


def blessing(verdict: Verdict, checks: tuple[Check, ...], baseline: BaselineRef | None) -> Blessing:
    return Blessing(verdict, baseline, _note(verdict, baseline), checks)


def _note(verdict: Verdict, baseline: BaselineRef | None) -> str | None:
    if verdict == UNCHECKED:
        return UNCHECKED_NOTE
    return None if baseline else "first run: no blessed baseline yet, so only value thresholds apply"


def describe(checks: tuple[Check, ...]) -> str:
    return "; ".join(f"{c.verdict}: {c.reason}" for c in checks) or UNCHECKED_NOTE

