"""Train: tf.keras models from config on the ingest step's TFRecords, with TensorBoard, checkpoints and resume."""

from components.train.errors import TrainError

__all__ = ["TrainError", "TrainResult", "run"]


def __getattr__(name: str):
    """`run` and `TrainResult` load TensorFlow, on first use: the launcher, which only starts the worker
    processes of a multi-worker run, is a package module too and need not wait seconds for it."""
    if name in ("run", "TrainResult"):
        from components.train import step

        return getattr(step, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
