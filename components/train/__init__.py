"""Train: tf.keras models from config on the ingest step's TFRecords, with TensorBoard, checkpoints and resume."""

from components.train.step import TrainResult, load_model, run
from components.train.task import TrainError

__all__ = ["TrainError", "TrainResult", "load_model", "run"]
