"""Official GLUE metrics, task scores and the GLUE score, as the leaderboard computes them.

Pure NumPy so the serving container can score without scikit-learn.

Units: GLUE reports every number in points (0-100: accuracy 84.31, a Matthews
or Pearson correlation times 100), and so does every score glue-tf shows or
writes. The statistics below (``accuracy``, ``f1``, ...) are the plain ones
(a fraction, a correlation in [-1, 1]) so they can be checked against
scikit-learn and SciPy; ``compute_metrics``, the one way the project scores a
task, turns them into points. Everything downstream (score components, task
scores, the GLUE score, reports, the service) is in points and never converts.

Degenerate inputs never divide by zero: Matthews correlation and F1 follow
scikit-learn (0.0 when undefined) and Pearson/Spearman return 0.0 where SciPy
returns NaN (a constant vector), so one degenerate task cannot turn the GLUE
score into NaN.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping

import numpy as np

from glue_tf.tasks import GLUE_TASKS, TASKS, Task


def _as_1d(values, dtype) -> np.ndarray:
    array = np.asarray(values, dtype=dtype).reshape(-1)
    return array


def _check_same_length(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"labels and predictions differ in length: {y_true.size} vs {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot compute a metric over zero examples")


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = _as_1d(y_true, np.int64), _as_1d(y_pred, np.int64)
    _check_same_length(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def f1(y_true, y_pred, positive: int = 1) -> float:
    """F1 of the positive class (GLUE: label 1 of MRPC and QQP)."""
    y_true, y_pred = _as_1d(y_true, np.int64), _as_1d(y_pred, np.int64)
    _check_same_length(y_true, y_pred)
    true_pos = np.sum((y_pred == positive) & (y_true == positive))
    predicted = np.sum(y_pred == positive)
    actual = np.sum(y_true == positive)
    if predicted + actual == 0:
        return 0.0
    return float(2.0 * true_pos / (predicted + actual))


def matthews_corrcoef(y_true, y_pred) -> float:
    """Multi-class Matthews correlation (Gorodkin's R_K), as scikit-learn computes it."""
    y_true, y_pred = _as_1d(y_true, np.int64), _as_1d(y_pred, np.int64)
    _check_same_length(y_true, y_pred)
    classes, encoded = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    n = y_true.size
    k = classes.size
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (encoded[:n], encoded[n:]), 1.0)
    true_sum = confusion.sum(axis=1)
    pred_sum = confusion.sum(axis=0)
    correct = np.trace(confusion)
    cov_ytyp = correct * n - np.dot(true_sum, pred_sum)
    cov_ypyp = n * n - np.dot(pred_sum, pred_sum)
    cov_ytyt = n * n - np.dot(true_sum, true_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp))


def pearson(y_true, y_pred) -> float:
    y_true, y_pred = _as_1d(y_true, np.float64), _as_1d(y_pred, np.float64)
    _check_same_length(y_true, y_pred)
    dt = y_true - y_true.mean()
    dp = y_pred - y_pred.mean()
    denominator = math.sqrt(float(np.dot(dt, dt)) * float(np.dot(dp, dp)))
    if denominator == 0.0:
        return 0.0
    return float(np.clip(np.dot(dt, dp) / denominator, -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties given their mean rank (``scipy.stats.rankdata``'s default)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    first_of_run = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run_id = np.cumsum(first_of_run) - 1
    run_starts = np.flatnonzero(first_of_run)
    run_ends = np.concatenate([run_starts[1:], [values.size]])
    mean_rank = (run_starts + run_ends + 1) / 2.0  # 1-based ranks
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[run_id]
    return ranks


def spearman(y_true, y_pred) -> float:
    y_true, y_pred = _as_1d(y_true, np.float64), _as_1d(y_pred, np.float64)
    _check_same_length(y_true, y_pred)
    return pearson(_average_ranks(y_true), _average_ranks(y_pred))


METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}

METRIC_LABELS = {
    "accuracy": "acc",
    "f1": "F1",
    "matthews_corrcoef": "MCC",
    "pearson": "Pearson",
    "spearman": "Spearman",
}


def predictions_from_outputs(task: Task, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """What is scored and submitted: label ids, or scores clipped to the task's range.

    ``outputs`` is an export's named outputs (``label_id``, or ``score`` already
    clipped) or, from a Keras model, ``{"logits": ...}``; both give the same answer.
    """
    if task.is_regression:
        scores = outputs["score"] if "score" in outputs else np.asarray(outputs["logits"])[:, 0]
        return np.clip(np.asarray(scores, dtype=np.float32), *task.score_range)
    if "label_id" in outputs:
        return np.asarray(outputs["label_id"], dtype=np.int64)
    return np.argmax(np.asarray(outputs["logits"]), axis=-1).astype(np.int64)


# The statistics above are fractions or correlations; GLUE's unit is points.
POINTS = 100.0


def compute_metrics(task: Task, labels, predictions) -> dict[str, float]:
    """The task's official metrics for one split, in points (predictions: label ids, or scores for STS-B)."""
    return {name: POINTS * METRICS[name](labels, predictions) for name in task.metrics}


def score_components(task: Task, per_split: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The task's score components (``Task.score_components`` keys) from ``{split: compute_metrics(...)}``.

    Components whose split is absent are left out; ``complete_score`` says whether
    the rest make a task score.
    """
    return {key: per_split[split][metric] for key, split, metric in task.score_components if split in per_split}


def complete_score(task: Task, components: Mapping[str, float]) -> float | None:
    """The task score if ``components`` has every one it needs (MNLI: matched and mismatched), else None."""
    if any(key not in components for key, _, _ in task.score_components):
        return None
    return task_score(task, components)


def task_score(task: Task, components: Mapping[str, float]) -> float:
    """The leaderboard's task score: the mean of the task's score components.

    ``components`` is keyed as ``Task.score_components`` (``f1`` and
    ``accuracy`` for MRPC, ``accuracy_matched``/``accuracy_mismatched`` for MNLI).
    """
    keys = [key for key, _, _ in task.score_components]
    missing = [key for key in keys if key not in components]
    if missing:
        raise KeyError(f"{task.name}: missing {', '.join(missing)} to compute its task score")
    return float(np.mean([components[key] for key in keys]))


def majority_prediction(task: Task, train_labels) -> float | int:
    """The training set's majority class (its mean score for STS-B): what the majority baseline predicts."""
    train_labels = np.asarray(train_labels)
    if task.is_regression:
        return float(train_labels.mean()) if train_labels.size else 0.0
    return int(np.bincount(train_labels.astype(np.int64), minlength=task.num_outputs).argmax())


def majority_baseline(task: Task, train_labels, dev_labels: Mapping[str, object]) -> dict[str, float]:
    """Score components of predicting the training set's majority class for every dev example.

    The floor a model must clear (GLUE's convention for WNLI is to submit exactly
    this). For STS-B the constant is the mean training score, whose correlations are 0.
    """
    constant = majority_prediction(task, train_labels)
    per_split = {
        split: compute_metrics(task, labels, np.full(len(labels), constant)) for split, labels in dev_labels.items()
    }
    return score_components(task, per_split)


def summarize(results: Mapping[str, Mapping[str, float]]) -> dict:
    """Task scores, the mean over the tasks present, and the GLUE score only when all nine are.

    ``results`` maps task name -> score components. AX (diagnostic) is kept
    apart from the mean, as on the leaderboard.
    Returns a dict with ``task_scores``, ``present``, ``missing``,
    ``mean_over_present`` and ``glue_score`` (None unless every GLUE task is present).
    """
    unknown = [name for name in results if name not in TASKS]
    if unknown:
        raise KeyError(f"unknown tasks in results: {', '.join(unknown)}")
    scores = {name: task_score(TASKS[name], comps) for name, comps in results.items()}
    present = [name for name in GLUE_TASKS if name in scores]
    missing = [name for name in GLUE_TASKS if name not in scores]
    mean = float(np.mean([scores[name] for name in present])) if present else None
    return {
        "task_scores": scores,
        "present": present,
        "missing": missing,
        "mean_over_present": mean,
        "glue_score": mean if not missing else None,
        "diagnostic": scores.get("ax"),
    }


def human_baseline_results() -> dict[str, dict[str, float]]:
    """The leaderboard's human row as ``summarize`` input (GLUE score 87.1)."""
    return {name: dict(TASKS[name].human_baseline) for name in GLUE_TASKS}


def human_score(task: Task) -> float | None:
    """The human baseline's task score (None for AX, which has no human row)."""
    return task_score(task, task.human_baseline) if task.human_baseline else None


def human_glue_score() -> float:
    """The human baseline's GLUE score as the leaderboard prints it (87.1), from the per-task human row."""
    return round_score(summarize(human_baseline_results())["glue_score"])


def round_score(value: float) -> float:
    """Rounds half up to one decimal, as the leaderboard prints scores (87.05 -> 87.1).

    Python's ``round`` works on the binary value (87.05 is 87.0499...) and
    would print 87.0; rounding first to 9 places removes that float noise.
    """
    exact = Decimal(repr(round(value, 9)))
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def describe(summary: Mapping) -> str:
    """One line for logs and reports that never passes a partial mean off as the GLUE score."""
    if summary["glue_score"] is not None:
        return f"GLUE score {round_score(summary['glue_score']):.1f}"
    if summary["mean_over_present"] is None:
        return "no GLUE task has results"
    return (
        f"mean over {len(summary['present'])} of {len(GLUE_TASKS)} tasks "
        f"{round_score(summary['mean_over_present']):.1f} (not a GLUE score; missing: {', '.join(summary['missing'])})"
    )

