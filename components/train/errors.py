"""The train step's own error: a config or a model that cannot be trained as asked."""

from components.common.errors import TfpipeError


class TrainError(TfpipeError):
    """The data or config cannot be trained on as asked (a model API that does not fit the features, a NaN loss)."""
