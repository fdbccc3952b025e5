"""Tune: grid and random hyperparameter search over train runs, shown in TensorBoard's HParams dashboard."""

from components.tune.step import Trial, TuneResult, run

__all__ = ["Trial", "TuneResult", "run"]
