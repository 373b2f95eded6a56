"""Picking the ``tf.distribute`` strategy from the machine and ``TF_CONFIG``."""

from __future__ import annotations

import json
import os


def cluster_workers() -> int:
    """Number of workers ``TF_CONFIG`` names (0 when unset)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return len(config.get("cluster", {}).get("worker", []))


def select_strategy():
    """Returns ``(strategy, description)``.

    MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers (it must
    be created before any other TensorFlow op runs), MirroredStrategy when more
    than one GPU is visible, else the default strategy.
    """
    import tensorflow as tf

    workers = cluster_workers()
    if workers > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, f"MultiWorkerMirroredStrategy ({workers} workers, {strategy.num_replicas_in_sync} replicas)"
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, f"MirroredStrategy ({len(gpus)} GPUs)"
    device = "GPU" if gpus else "CPU"
    return tf.distribute.get_strategy(), f"default strategy (one {device})"


def is_chief(strategy) -> bool:
    """Whether this process writes checkpoints, exports and reports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0
