"""Evaluate: metrics and slices on the test split, a report, and a blessing gate against thresholds and a baseline."""

from components.evaluate.gate import EvaluateError
from components.evaluate.step import EvaluateResult, run

__all__ = ["EvaluateError", "EvaluateResult", "run"]
