"""The metrics pass's state: every accumulator of one evaluation, added to a batch at a time and merged.

One accumulator for the whole test split, one per sliced feature (a group
per slice, so that the state grows with the number of slices, not of rows),
and one for the baseline model when the registry names one (overall only: the
gate compares overall metrics). The local engine folds batches into one
`Evaluation`; the beam engine merges its workers' partial ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.common.evaluation_records import SliceMetrics
from components.common.task import Task
from components.evaluate import metrics as metrics_lib
from components.evaluate.accumulators import Accumulator, Classification, Regression
from components.evaluate.slices import FeatureSlices
from components.evaluate.stream import Batch


@dataclass
class Evaluation:
    slicing: tuple[FeatureSlices, ...]
    overall: Accumulator
    by_feature: tuple[Accumulator, ...]  # per sliced feature, a group per slice
    baseline: Accumulator | None

    @classmethod
    def empty(cls, task: Task, slicing: tuple[FeatureSlices, ...], baseline: bool) -> Evaluation:
        def new(groups: int) -> Accumulator:
            if task.kind == "classification":
                return Classification.empty(task.classes, groups)
            return Regression.empty(groups)

        return cls(slicing, new(1), tuple(new(len(f.labels)) for f in slicing), new(1) if baseline else None)

    def add(self, batch: Batch) -> None:
        outputs = batch.outputs[0]
        self.overall.add(batch.labels, outputs)
        for feature, accumulator in zip(self.slicing, self.by_feature):
            accumulator.add(batch.labels, outputs, feature.assign(batch.columns[feature.name]))
        if self.baseline is not None:
            self.baseline.add(batch.labels, batch.outputs[1])

    def merge(self, other: Evaluation) -> Evaluation:
        self.overall.merge(other.overall)
        for mine, theirs in zip(self.by_feature, other.by_feature):
            mine.merge(theirs)
        if self.baseline is not None:
            self.baseline.merge(other.baseline)
        return self

    def slices(self) -> tuple[SliceMetrics, ...]:
        """Each slice that holds examples, with its scalar metrics."""
        return tuple(SliceMetrics(feature.name, label, int(accumulator.count[i]),
                                  metrics_lib.scalars(accumulator.result(i, curves=False)))
                     for feature, accumulator in zip(self.slicing, self.by_feature)
                     for i, label in enumerate(feature.labels) if accumulator.count[i])
