"""The checks: new examples' profiles against the baseline's, TFDV's kinds of anomaly and its drift distances.

Every threshold comes from `ValidateConfig`, and whether a breach fails the
gate or only warns is `ValidateConfig.fail`. Nothing here reads rows: counts,
ranges, value counts and histograms are all the statistics hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.common.config import AnomalyKind, ValidateConfig
from components.validate import distance
from components.validate.anomalies import Finding, Verdict
from components.validate.profile import Profile

SHOWN_VALUES = 5  # unseen values a sentence names
# + bytes_per_value or tokens_per_value: a text's length drift; + values_per_row: a list's
TEXT_DRIFT = "jensen_shannon_divergence_"


@dataclass(frozen=True)
class Sides:
    """What the checks compare: both data sets' profiles, label and rows per split."""

    baseline: dict[str, Profile]
    new: dict[str, Profile]
    label: str  # the baseline's
    baseline_splits: dict[str, int]
    new_splits: dict[str, int]


def compare(sides: Sides, cfg: ValidateConfig) -> tuple[Finding, ...]:
    judge = _Judge(cfg)
    findings = [
        *(judge.event("missing_feature", f"{n}: in the baseline but not in the new examples.", feature=n)
          for n in sides.baseline if n not in sides.new),
        *(judge.event("new_feature", f"{n}: in the new examples but not in the baseline.", feature=n)
          for n in sides.new if n not in sides.baseline),
        *(judge.event("empty_split", f"split {s}: no rows, against {sides.baseline_splits[s]:,} in the baseline.",
                      split=s, statistic="rows", measured=0.0)
          for s, rows in sides.new_splits.items() if rows == 0 and sides.baseline_splits.get(s, 0) > 0),
    ]
    for name, base in sides.baseline.items():
        if name in sides.new:
            findings += _feature(judge, base, sides.new[name], name == sides.label)
    return tuple(findings)


class _Judge:
    """Turns a measurement into a finding: pass within its threshold, else fail or warn as the config says."""

    def __init__(self, cfg: ValidateConfig):
        self.cfg = cfg

    def verdict(self, kind: AnomalyKind, breached: bool) -> Verdict:
        return "pass" if not breached else "fail" if kind in self.cfg.fail else "warn"

    def event(self, kind: AnomalyKind, message: str, **fields) -> Finding:
        return Finding(kind=kind, verdict=self.verdict(kind, True), message=message, **fields)

    def measure(self, kind: AnomalyKind, feature: str, statistic: str, measured: float, threshold: float,
                message: str) -> Finding:
        return Finding(kind=kind, verdict=self.verdict(kind, measured > threshold), message=message,
                       feature=feature, statistic=statistic, measured=measured, threshold=threshold)

    def drift_threshold(self, feature: str) -> float:
        return self.cfg.drift.features.get(feature, self.cfg.drift.default)


def _feature(judge: _Judge, base: Profile, new: Profile, is_label: bool) -> list[Finding]:
    name = base.name
    if base.type != new.type:
        return [judge.event("type_change", f"{name}: type {base.type} in the baseline, {new.type} now.",
                            feature=name)]
    findings = [_missing(judge, base, new)]
    if base.categorical and new.categorical:
        if base.domain is not None:
            findings.append(_domain(judge, base, new, is_label))
        findings.append(_categorical_drift(judge, base, new))
    elif base.numeric and new.numeric:
        findings += [_range(judge, base, new), _numeric_drift(judge, base, new)]
    if base.distributions and new.distributions:
        findings += [_text_drift(judge, base, new, what) for what in base.distributions if what in new.distributions]
    return findings


def _missing(judge: _Judge, base: Profile, new: Profile) -> Finding:
    allowed = base.missing_fraction + judge.cfg.missing_tolerance
    return judge.measure("missing_fraction", base.name, "missing_fraction", new.missing_fraction, allowed,
                         f"{base.name}: {new.missing_fraction:.1%} of rows lack a value, against "
                         f"{base.missing_fraction:.1%} in the baseline (allowed: up to {allowed:.1%}).")


def _domain(judge: _Judge, base: Profile, new: Profile, is_label: bool) -> Finding:
    known = set(base.domain)
    unseen = {v: c for v, c in new.values.items() if v not in known}
    fraction = sum(unseen.values()) / new.count if new.count else 0.0
    shown = ", ".join(repr(v) for v in sorted(unseen, key=unseen.get, reverse=True)[:SHOWN_VALUES])
    if is_label:
        what = f"{fraction:.1%} of rows hold classes never seen in the baseline: {shown}" if unseen else \
            "every class is one the baseline has"
        return judge.measure("new_label_class", base.name, "unseen_fraction", fraction, 0.0,
                             f"label {base.name}: {what}.")
    allowed = judge.cfg.domain_tolerance
    what = f"{fraction:.1%} of rows hold values outside the baseline's {len(known)}: {shown}" if unseen else \
        f"every value is one of the baseline's {len(known)}"
    return judge.measure("out_of_domain", base.name, "unseen_fraction", fraction, allowed,
                         f"{base.name}: {what} (allowed outside: {allowed:.1%}).")


def _range(judge: _Judge, base: Profile, new: Profile) -> Finding:
    low, high = base.minimum, base.maximum
    width = high - low if high > low else max(abs(low), 1.0)
    excess = max(low - new.minimum, new.maximum - high, 0.0) / width
    tolerance = judge.cfg.range_tolerance
    return judge.measure("out_of_range", base.name, "range_excess", excess, tolerance,
                         f"{base.name}: values span [{new.minimum:g}, {new.maximum:g}] against the baseline's "
                         f"[{low:g}, {high:g}], {excess:.0%} of its width beyond it (allowed: {tolerance:.0%}).")


def _numeric_drift(judge: _Judge, base: Profile, new: Profile) -> Finding:
    value = distance.histogram_jensen_shannon(base.histogram, new.histogram)
    threshold = judge.drift_threshold(base.name)
    return judge.measure("drift", base.name, "jensen_shannon_divergence", value, threshold,
                         f"{base.name}: Jensen-Shannon divergence {value:.4f} from the baseline over its quantile "
                         f"bins (threshold {threshold:g}).")


def _text_drift(judge: _Judge, base: Profile, new: Profile, what: str) -> Finding:
    """A text's length, in bytes or tokens per value, drifts as a number does (its tokens drift as categories);
    so does a list's length, its values per row (its values drift as their type's do)."""
    value = distance.histogram_jensen_shannon(base.distributions[what], new.distributions[what])
    threshold = judge.drift_threshold(base.name)
    return judge.measure("drift", base.name, f"{TEXT_DRIFT}{what}", value, threshold,
                         f"{base.name}: Jensen-Shannon divergence {value:.4f} of its {what.replace('_', ' ')} "
                         f"from the baseline's (threshold {threshold:g}).")


def _categorical_drift(judge: _Judge, base: Profile, new: Profile) -> Finding:
    d = distance.l_infinity(base.values, new.values)
    threshold = judge.drift_threshold(base.name)
    at = f", largest for {d.at!r}" if d.at else ""
    return judge.measure("drift", base.name, "l_infinity", d.value, threshold,
                         f"{base.name}: L-infinity distance {d.value:.4f} from the baseline{at} "
                         f"(threshold {threshold:g}).")
