"""Which process of a training cluster this is, from `TF_CONFIG` (set by a Vertex CustomJob, a Kubeflow TFJob or
`tfpipe train --workers`); without TensorFlow, so that a step's launcher can ask before loading it."""

from __future__ import annotations

import json
import os


def cluster() -> dict:
    return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")


def worker_count() -> int:
    spec = cluster().get("cluster", {})
    return len(spec.get("worker", [])) + len(spec.get("chief", []))


def is_chief() -> bool:
    """The chief, or worker 0 when there is no chief, or a single process."""
    task = cluster().get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index") == 0 and "chief" not in cluster().get("cluster", {})
