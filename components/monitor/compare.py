"""Skew and drift of one window, with validate's distances: L-infinity for categories, Jensen-Shannon for numbers.

Skew compares a window with training: each input feature with its statistics
over every training row (the only feature statistics ingest keeps), and the
predictions with the training split's label counts for a classifier (the
label over every row for a regressor). Drift compares a window with the one
before it. Numbers are compared over the baseline's quantile bins, as
validate does. A text feature is measured as validate measures it: its
tokens as categories, and its lengths in bytes and in tokens per value as
numbers (`statistic` names which, as validate's findings do). Images have no
distribution in the statistics and are not compared, nor is a feature
without values on either side.
"""

from __future__ import annotations

import dataclasses

from components.common.config import DriftThresholds
from components.common.metadata import SPLIT_PREFIX, DataMetadata, stats_name, value_counts
from components.monitor.findings import Measurement, MeasurementKind
from components.validate import distance
from components.validate.checks import TEXT_DRIFT
from components.validate.profile import Profile, profiles

TRAIN_SPLIT = "train"


def training_profiles(meta: DataMetadata) -> dict[str, Profile]:
    """Training's profiles, the label's counts taken from the train split when the statistics have them."""
    found = profiles(meta)
    label = meta.label
    split = [d for d in meta.statistics.datasets if d.name == f"{SPLIT_PREFIX}{TRAIN_SPLIT}"]
    counts = [value_counts(s) for s in (split[0].features if split else ()) if stats_name(s) == label]
    if label in found and counts and counts[0]:
        found[label] = dataclasses.replace(found[label], values=counts[0])
    return found


def measure(kind: MeasurementKind, thresholds: DriftThresholds, baseline: dict[str, Profile],
            window: dict[str, Profile], label: str) -> tuple[Measurement, ...]:
    """Every feature both sides have a distribution of, and the predictions (under the label's name)."""
    found = []
    for name in sorted(baseline, key=lambda n: (n == label, n)):  # the features by name, then the predictions
        base, new = baseline[name], window.get(name)
        if new is None or not (new.count and base.count):
            continue
        threshold = thresholds.features.get(name, thresholds.default)
        if base.categorical and new.categorical:
            d = distance.l_infinity(base.values, new.values)
            found.append(Measurement(kind, name, name == label, "l_infinity", d.value, threshold, d.at))
        elif base.numeric and new.numeric:
            value = distance.histogram_jensen_shannon(base.histogram, new.histogram)
            found.append(Measurement(kind, name, name == label, "jensen_shannon_divergence", value, threshold))
        for what in sorted((base.distributions or {}).keys() & (new.distributions or {}).keys()):
            value = distance.histogram_jensen_shannon(base.distributions[what], new.distributions[what])
            found.append(Measurement(kind, name, name == label, f"{TEXT_DRIFT}{what}", value, threshold))
    return tuple(found)
