"""Whether a served form of a model answers as the Keras model it came from: one measure and one tolerance, for
export's self-check (the SavedModel, loaded fresh) and the infra check (the model server, over the wire)."""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-5  # float32 graphs traced apart agree to about 1e-7; a real difference is orders larger


def max_difference(got, want) -> float:
    """The largest absolute difference between two answers of the same shape (flattened)."""
    return float(np.max(np.abs(np.asarray(got, np.float64).reshape(-1) - np.asarray(want, np.float64).reshape(-1))))


def agrees(difference: float) -> bool:
    return difference <= TOLERANCE
