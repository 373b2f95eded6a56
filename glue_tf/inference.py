"""Predictions from an exported SavedModel (TensorFlow and tensorflow-text only), and its scores."""

from __future__ import annotations

import time

import numpy as np

from glue_tf import export, metrics
from glue_tf.errors import ModelMismatchError, UnlabelledSplitError
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


def score_export(predictor: ExportPredictor, task: Task, source, splits) -> dict:
    """The export's official metrics (points) on labelled ``splits`` of a data source.

    The one way an export is scored (``glue-tf evaluate``; ``train-all`` for a task
    whose model was trained elsewhere). Returns ``metrics`` ``{split: {metric: points}}``,
    the score ``components``, the task ``score`` (None unless every split it needs was
    scored), ``examples`` per split and the prediction ``seconds``.
    """
    exported_for = predictor.metadata["task"]
    if exported_for != task.predicted_by:
        raise ModelMismatchError(f"the export at {predictor.path} is a {exported_for} model; "
                                 f"{task.name} needs a {task.predicted_by} model")
    per_split, examples_per_split, seconds = {}, {}, 0.0
    for split in splits:
        examples = source.examples(task, split)
        labels = np.array([e["label"] for e in examples])
        if len(labels) and np.all(labels == -1):
            dev = f" ({', '.join(task.dev_splits)})" if task.dev_splits else ""
            raise UnlabelledSplitError(f"{task.name} {split} has no labels (a test split); evaluate a dev split{dev}")
        started = time.perf_counter()
        predictions = predictor.outputs(task, examples)
        seconds += time.perf_counter() - started
        per_split[split] = metrics.compute_metrics(task, labels, predictions)
        examples_per_split[split] = len(examples)
    components = metrics.score_components(task, per_split)
    return {"metrics": per_split, "components": components, "score": metrics.complete_score(task, components),
            "examples": examples_per_split, "seconds": seconds}
