"""The one error monitor raises for input a user must fix."""

from components.common.errors import TfpipeError


class MonitorError(TfpipeError):
    """A log folder or training examples that cannot be read, a log folder without a record, requests unlike the
    training data (another model's), a window too long, a threshold for a feature the schema lacks, or a
    findings.json that is not one."""
