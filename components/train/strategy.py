"""The tf.distribute strategy from config and the environment.

`auto` reads `TF_CONFIG`, as a Vertex CustomJob with worker pools or a Kubeflow
TFJob sets it: more than one worker means MultiWorkerMirroredStrategy; else
several GPUs mean MirroredStrategy; else the default strategy. Only the chief
writes final outputs; other workers write to temporary places.
"""

from __future__ import annotations

import os

import tensorflow as tf

from components.common.tf_config import cluster, is_chief, worker_count  # noqa: F401 (this module's API too)


def make(name: str, tpu: str = "") -> tf.distribute.Strategy:
    if name == "auto":
        if worker_count() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def output_dir(final: str, what: str) -> str:
    """`final` on the chief; a per-worker temporary folder elsewhere (TensorFlow's documented pattern)."""
    if is_chief():
        return final
    task = cluster().get("task", {})
    return os.path.join(final, f".{what}-worker-{task.get('type')}-{task.get('index')}")
