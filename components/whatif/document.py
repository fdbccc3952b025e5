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
from typing import Any

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


@dataclass(frozen=True)
class PageDocument:
    """What the page's script gets from /api/examples: the test examples and how to edit them."""

    model: str
    label: str
    classes: tuple[str, ...]
    features: tuple[EditorFeature, ...]
    rows: tuple[dict[str, Any], ...]  # one per test example: each input's value, and "_label"
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
