"""The one error validate raises for input a user must fix."""

from components.common.errors import TfpipeError


class ValidateError(TfpipeError):
    """A baseline or examples folder that cannot be read, statistics of another data set, a threshold for a
    feature neither has, or an anomalies.json that is not one."""
