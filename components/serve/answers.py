"""A classify or regress signature's outputs as TF Serving's Classify and Regress APIs answer them: protos for
gRPC answers and request logs, lists for REST."""

from __future__ import annotations

import numpy as np
from tensorflow_serving.apis import classification_pb2, regression_pb2


def classification_result(outputs: dict[str, np.ndarray]) -> classification_pb2.ClassificationResult:
    """A classify signature's answer as the Classify API's result (gRPC answers and request logs)."""
    result = classification_pb2.ClassificationResult()
    for row in classes(outputs):
        result.classifications.add().classes.extend(classification_pb2.Class(label=c, score=s) for c, s in row)
    return result


def regression_result(outputs: dict[str, np.ndarray]) -> regression_pb2.RegressionResult:
    return regression_pb2.RegressionResult(regressions=[regression_pb2.Regression(value=v)
                                                        for v in regressions(outputs)])


def classes(outputs: dict[str, np.ndarray]) -> list[list[tuple[str, float]]]:
    """A classify signature's answer as [[(label, score), ...] per example]."""
    return [[(c.decode("utf-8", "replace"), float(s)) for c, s in zip(row_c, row_s, strict=True)]
            for row_c, row_s in zip(outputs["classes"], outputs["scores"], strict=True)]


def regressions(outputs: dict[str, np.ndarray]) -> list[float]:
    return [float(v) for v in outputs["outputs"].reshape(-1)]
