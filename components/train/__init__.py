"""Train: tf.keras models from config on the ingest step's TFRecords, with TensorBoard, checkpoints and resume."""

from components.train.errors import TrainError
from components.train.step import TrainResult, run

__all__ = ["TrainError", "TrainResult", "run"]
