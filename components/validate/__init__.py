"""Validate: new examples' schema and statistics against the last good run's; anomalies, drift, a report, a gate."""

from components.validate.anomalies import Anomalies, Finding
from components.validate.errors import ValidateError
from components.validate.step import ValidateResult, run

__all__ = ["Anomalies", "Finding", "ValidateError", "ValidateResult", "run"]
