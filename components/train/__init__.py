"""Train: tf.keras models from config on the ingest step's TFRecords, with TensorBoard, checkpoints and resume."""

from components.train.step import ModelError, TrainResult, load_model, run
from components.train.task import TrainError

__all__ = ["ModelError", "TrainError", "TrainResult", "load_model", "run"]
