"""Scoring a Keras model in training, on encoded splits, with the task's official metrics.

Training scores its model every epoch and predicts the test splits from the Keras
model it holds, before any export exists; an export is scored through
:class:`glue_tf.exports.predictor.ExportPredictor` instead, from text.
"""

from __future__ import annotations

import numpy as np

from glue_tf import features, metrics
from glue_tf.tasks import Task


class KerasScorer:
    """Runs a Keras model over encoded splits in length-sorted batches (one traced function, reused)."""

    def __init__(self, model, batch_size: int = 64):
        import tensorflow as tf

        self.model = model
        self.batch_size = batch_size
        self.feature_names = tuple(model.input)
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def logits(self, encoded: features.EncodedSplit) -> np.ndarray:
        """Float32 logits, one row per example in ``encoded`` order."""
        plan = features.sorted_plan(encoded.lengths, self.batch_size)
        dataset = features.batches_dataset(encoded, plan, with_labels=False, feature_names=self.feature_names)
        outputs = [self._forward(batch).numpy().astype(np.float32) for batch in dataset]
        width = self.model.output.shape[-1]
        logits = np.zeros((len(encoded), width), dtype=np.float32)
        if outputs:
            logits[np.concatenate(plan)] = np.concatenate(outputs)
        return logits

    def predictions(self, task: Task, splits: dict[str, features.EncodedSplit]) -> dict[str, np.ndarray]:
        """Each split's predictions as the official metrics read them (label ids, or STS-B scores)."""
        return {split: metrics.predictions_from_outputs(task, {"logits": self.logits(encoded)})
                for split, encoded in splits.items()}


def score(task: Task, labels: dict[str, np.ndarray], predictions: dict[str, np.ndarray]) -> dict[str, float]:
    """Score components of ``task`` (``Task.score_components`` keys, in points) from each dev split's labels and
    predictions: as an epoch scores them, and as the seed's kept predictions (:mod:`glue_tf.dev_predictions`)
    score again."""
    per_split = {split: metrics.compute_metrics(task, labels[split], predictions[split]) for split in labels}
    return metrics.score_components(task, per_split)
