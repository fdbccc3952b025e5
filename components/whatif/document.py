"""What the What-If step and page hand on, as typed records: `whatif.json` and the page's examples.

The step writes a `WhatIfDocument`; the report reads its attributes, never
keys, and `WhatIfDocument.read` checks every key of a file against the
fields, so a renamed field fails where it is read, not in a blank plot.
`PageDocument` is what the interactive page's script receives.

Values meant for people are text (`shown`): a missing string value reads
"(missing)" in every table, tick label and group name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from components.common import io
from components.common.config import ConfigError, from_plain, to_plain
from components.common.errors import TfpipeError
from components.common.evaluation_records import SliceMetrics
from components.common.page import MISSING


class WhatIfError(TfpipeError):
    """A What-If document that cannot be read, or a page request that cannot be answered."""


def nested(values: list) -> tuple:
    """Nested lists (an array's `tolist()`) as the nested tuples the records hold."""
    return tuple(nested(v) if isinstance(v, list) else v for v in values)


@dataclass(frozen=True)
class PartialDependence:
    """Predictions as `feature` sweeps `grid`: the mean over examples, and single examples' lines (ICE)."""

    feature: str
    numeric: bool
    grid: tuple[Any, ...]  # the values fed to the model: numbers, or strings ("" for missing)
    mean: tuple[tuple[float, ...], ...]  # [point][output]
    ice: tuple[tuple[tuple[float, ...], ...], ...] = ()  # [example][point][output]


@dataclass(frozen=True)
class FeatureValues:
    """One feature of an example and of its counterfactual, as shown."""

    feature: str
    example: str
    counterfactual: str
    differs: bool


@dataclass(frozen=True)
class Counterfactual:
    example: int
    predicted: str
    counterfactual: int
    counterfactual_predicted: str
    distance: float
    values: tuple[FeatureValues, ...]

    @property
    def differs(self) -> tuple[str, ...]:
        return tuple(v.feature for v in self.values if v.differs)


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    precision: float
    recall: float
    cost: float


@dataclass(frozen=True)
class GroupThresholds:
    group: str
    count: int
    demographic_parity: float
    equal_opportunity: float


@dataclass(frozen=True)
class Thresholds:
    curve: tuple[ThresholdPoint, ...]
    cost_ratio: float
    best: ThresholdPoint
    groups: tuple[GroupThresholds, ...] = ()
    fairness_feature: str = ""


@dataclass(frozen=True)
class SaliencyExample:
    """A confidently wrong image and how much each patch drives the wrong prediction."""

    example: int
    true: str
    predicted: str
    confidence: float
    image: tuple[tuple[tuple[int, ...], ...], ...]  # [row][column][channel], 0..255
    saliency: tuple[tuple[float, ...], ...]  # [row][column]: drop in P(predicted) when occluded


@dataclass(frozen=True)
class WhyEmpty:
    """Why a section of the report has nothing to show ("" where it has something)."""

    slices: str = ""
    partial_dependence: str = ""
    counterfactuals: str = ""
    thresholds: str = ""
    images: str = ""


@dataclass(frozen=True)
class Difference:
    """One metric of both models on the same rows: the candidate minus the baseline, and the 95% interval of
    that difference over bootstrap resamples of the rows (both models scored on each resample). `better` names
    the model the interval favours; "neither" when it holds 0 (the difference is within noise)."""

    metric: str
    candidate: float
    baseline: float
    difference: float
    low: float
    high: float
    better: Literal["candidate", "baseline", "neither"]


@dataclass(frozen=True)
class SliceDifferences:
    feature: str
    slice: str
    count: int
    differences: tuple[Difference, ...]
    disagreements: int = 0  # rows whose predicted class differs between the models


@dataclass(frozen=True)
class Finding:
    """A difference beyond noise, and where: "overall" or "<feature> = <slice>"."""

    where: str
    difference: Difference


@dataclass(frozen=True)
class Value:
    feature: str
    value: str


@dataclass(frozen=True)
class Disagreement:
    """A test row the two models put in different classes, with each one's confidence and the row's features."""

    example: int
    true: str
    candidate: str
    candidate_confidence: float
    baseline: str
    baseline_confidence: float
    values: tuple[Value, ...]
    image: tuple[tuple[tuple[int, ...], ...], ...] = ()  # an image model's input, [row][column][channel]


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    confidence: float  # mean top-class probability of the bin's rows
    accuracy: float  # how often that class is right


@dataclass(frozen=True)
class Calibration:
    ece: float  # expected calibration error
    bins: tuple[CalibrationBin, ...]


@dataclass(frozen=True)
class Comparison:
    """The candidate (the document's model) against a baseline on the same test rows."""

    candidate: str  # where each model was loaded from
    baseline: str
    resamples: int  # bootstrap resamples behind every interval
    overall: tuple[Difference, ...]
    findings: tuple[Finding, ...]  # every difference beyond noise, overall first: the verdict
    slices: tuple[SliceDifferences, ...] = ()
    disagreements: int = 0
    most_confident: tuple[Disagreement, ...] = ()  # disagreements where the models are surest, surest first
    calibration: tuple[Calibration, ...] = ()  # (candidate, baseline); classification only
    partial_dependence: tuple[PartialDependence, ...] = ()  # the baseline's, on the candidate's grids
    why_no_disagreements: str = ""  # regression: there are no classes to disagree on


@dataclass(frozen=True)
class WhatIfDocument:
    """whatif.json: every analysis of one model on its test split."""

    task: str  # classification or regression
    label: str
    classes: tuple[str, ...]
    count: int
    overall: dict[str, float]
    slices: tuple[SliceMetrics, ...] = ()
    per_class: tuple[SliceMetrics, ...] = ()
    partial_dependence: tuple[PartialDependence, ...] = ()
    counterfactuals: tuple[Counterfactual, ...] = ()
    thresholds: Thresholds | None = None
    images: tuple[SaliencyExample, ...] = ()
    why_empty: WhyEmpty = WhyEmpty()
    comparison: Comparison | None = None  # `--compare`, or the pipeline's baseline: both models side by side

    def to_json(self) -> str:
        return json.dumps(to_plain(self))

    @classmethod
    def from_json(cls, text: str, where: str = "whatif.json") -> WhatIfDocument:
        try:
            return from_plain(cls, json.loads(text), where)
        except (ConfigError, TypeError, ValueError) as e:
            raise WhatIfError(f"{where}: not a What-If document this tfpipe reads ({e})") from None

    def write(self, folder: str) -> None:
        io.write_text(f"{folder}/whatif.json", self.to_json())

    @classmethod
    def read(cls, folder: str) -> WhatIfDocument:
        path = f"{folder}/whatif.json"
        with io.open_binary(path) as f:
            return cls.from_json(f.read().decode(), path)


@dataclass(frozen=True)
class EditorFeature:
    """What the datapoint editor knows of one input."""

    name: str
    numeric: bool
    integer: bool
    vocabulary: tuple[str, ...] = ()  # string features: the choices offered ("" stands for missing)
    grid: tuple[float, ...] = ()  # numbers: where partial dependence is evaluated
    text: bool = False  # free text: edited in a text area, never swept by partial dependence
    list: str = ""  # a list's values' type (int, float, string): edited as values separated by commas, never swept
    image: tuple[int, ...] = ()  # images: (height, width, channels); rows hold them as PNG data URLs


@dataclass(frozen=True)
class PageModel:
    """One model version the page asks for predictions, through the model server's REST API."""

    role: Literal["candidate", "baseline"]
    version: int
    shown: str  # how the page names it: "version 3 (candidate)", "production (version 2)"
    predict: str  # the REST path: /v1/models/<name>/versions/<version>:predict


@dataclass(frozen=True)
class PageDocument:
    """What the page's script gets from /api/examples: the test examples, how to edit them, the models."""

    model: str
    label: str
    classes: tuple[str, ...]
    features: tuple[EditorFeature, ...]
    rows: tuple[dict[str, Any], ...]  # one per test example: each input's value, and "_label"
    models: tuple[PageModel, ...] = ()  # the candidate, then the baseline when comparing
    production: int | None = None  # the version the registry's production alias points at
    promote: bool = False  # whether the page may promote the candidate (not with --read-only)
    missing: str = MISSING  # how the page shows a missing value

    def feature(self, name: str) -> EditorFeature:
        for f in self.features:
            if f.name == name:
                return f
        raise WhatIfError(f"no feature {name!r}; the model's inputs are {[f.name for f in self.features]}")

    def to_json(self) -> str:
        return json.dumps(to_plain(self))


@dataclass(frozen=True)
class PartialDependenceRequest:
    """What the page asks of /api/partial-dependence: sweep `feature` around this example's `row`."""

    feature: str
    row: dict[str, Any]
