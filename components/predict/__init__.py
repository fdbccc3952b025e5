"""Batch scoring: a registry version's SavedModel over examples or a source; predictions keyed by `ingest.key`."""

from components.predict.step import PredictError, PredictResult, run

__all__ = ["PredictError", "PredictResult", "run"]
