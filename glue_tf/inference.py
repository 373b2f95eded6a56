"""Predictions from an exported SavedModel (TensorFlow and tensorflow-text only)."""

from __future__ import annotations

import numpy as np

from glue_tf import export
from glue_tf.tasks import Task


class ExportPredictor:
    """Calls an export's ``serving_default`` in batches of similar length (they pad less)."""

    def __init__(self, path, batch_size: int = 64):
        self.signature, self.metadata = export.load(path)
        self.path = path
        self.batch_size = batch_size

    def outputs(self, task: Task, examples: list[dict]) -> np.ndarray:
        """Label ids (or clipped STS-B scores) for ``examples``, in their order."""
        import tensorflow as tf

        order = np.argsort([sum(len(e[f]) for f in task.text_features) for e in examples], kind="stable")
        results = np.zeros(len(examples), dtype=np.float32 if task.is_regression else np.int64)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            inputs = {f: tf.constant([examples[r][f] for r in rows]) for f in task.text_features}
            out = self.signature(**inputs)
            results[rows] = (out["score"] if task.is_regression else out["label_id"]).numpy()
        return results
