"""The train step's own error: a config or a model that cannot be trained as asked."""

from components.common.errors import TfpipeError


class TrainError(TfpipeError):
    """The data or config cannot be trained on as asked (a model API that does not fit the features, a NaN loss)."""


class WorkersFailed(TrainError):
    """A local multi-worker run stopped on a failed worker. `status` is that worker's exit status (128 + the
    signal's number when it was killed), which `python -m components train` exits with, as a shell would."""

    def __init__(self, status: int):
        super().__init__(f"train: a worker failed (exit status {status}); its output is above")
        self.status = status
