"""Predictions from an exported SavedModel (TensorFlow and tensorflow-text only)."""

from __future__ import annotations

import numpy as np

from glue_tf import export, metrics
from glue_tf.tasks import Task


class ExportPredictor:
    """Calls an export's ``serving_default`` in batches of similar length (they pad less)."""

    def __init__(self, path, batch_size: int = 64):
        self.signature, self.metadata = export.load(path)
        self.path = path
        self.batch_size = batch_size

    def raw_outputs(self, task: Task, examples: list[dict]) -> dict[str, np.ndarray]:
        """Every output of the signature (probabilities, label_id, ... or score), in ``examples`` order."""
        import tensorflow as tf

        order = np.argsort([sum(len(e[f]) for f in task.text_features) for e in examples], kind="stable")
        outputs: dict[str, np.ndarray] = {}
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            result = self.signature(**{f: tf.constant([examples[r][f] for r in rows]) for f in task.text_features})
            for key, value in result.items():
                value = value.numpy()
                if key not in outputs:
                    outputs[key] = np.zeros((len(examples), *value.shape[1:]), value.dtype)
                outputs[key][rows] = value
        return outputs

    def outputs(self, task: Task, examples: list[dict]) -> np.ndarray:
        """Label ids (or clipped STS-B scores) for ``examples``, in their order."""
        if not examples:
            return np.zeros(0, dtype=np.float32 if task.is_regression else np.int64)
        return metrics.predictions_from_outputs(task, self.raw_outputs(task, examples))
