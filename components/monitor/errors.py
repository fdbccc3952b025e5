"""The one error monitor raises for input a user must fix."""

from components.common.errors import TfpipeError


class MonitorError(TfpipeError):
    """A log folder or training examples that cannot be read, a threshold for a feature the schema lacks, or a
    findings.json that is not one."""
