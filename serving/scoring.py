"""Official GLUE metrics on labelled requests, with the human baseline beside each number.

All numbers are percentages, as on the leaderboard. A task's score is given
only when every split it needs is present (MNLI: matched and mismatched); the
GLUE score only when all nine tasks are (``glue_tf.metrics.summarize``).
"""

from __future__ import annotations

import numpy as np

from glue_tf import metrics
from glue_tf.tasks import HUMAN_GLUE_SCORE, Task
from serving.errors import ApiError
from serving.schemas import instances_to_columns, parse_labels, task_or_404


def predictions_from_outputs(task: Task, outputs: dict) -> np.ndarray:
    return np.asarray(outputs["score"] if task.is_regression else outputs["label_id"])


def parse_task_body(task: Task, body, max_instances: int, max_chars: int) -> dict:
    """``{"instances", "labels"}`` (the task's first dev split) or ``{"splits": {split: {...}}}``."""
    if not isinstance(body, dict):
        raise ApiError(f"{task.name}: expected an object with 'instances' and 'labels'")
    if "splits" in body:
        splits = body["splits"]
        valid = task.dev_splits or tuple(task.test_splits)
        if not isinstance(splits, dict) or not splits or set(splits) - set(valid):
            raise ApiError(f"{task.name}: 'splits' must map some of {list(valid)} to instances and labels")
    else:
        splits = {(task.dev_splits or tuple(task.test_splits))[0]: body}
    parsed = {}
    for split, part in splits.items():
        if not isinstance(part, dict) or "instances" not in part or "labels" not in part:
            raise ApiError(f"{task.name}/{split}: expected an object with 'instances' and 'labels'")
        unknown = set(part) - {"instances", "labels"}
        if unknown:
            raise ApiError(f"{task.name}/{split}: unexpected keys {sorted(unknown)}")
        columns = instances_to_columns(task, part["instances"], max_instances, max_chars)
        count = len(part["instances"])
        parsed[split] = (columns, parse_labels(task, part["labels"], count))
    return parsed


def score_parsed(task: Task, parsed: dict, predict) -> dict:
    """``predict(columns) -> outputs``; returns metrics per split, the task score and the human row."""
    per_split = {}
    for split, (columns, labels) in parsed.items():
        predictions = predictions_from_outputs(task, predict(columns))
        per_split[split] = {k: 100.0 * v for k, v in metrics.compute_metrics(task, labels, predictions).items()}
    components = {key: per_split[split][metric] for key, split, metric in task.score_components if split in per_split}
    complete = len(components) == len(task.score_components)
    return {
        "task": task.name,
        "examples": {split: len(labels) for split, (_, labels) in parsed.items()},
        "metrics": per_split,
        "score": metrics.task_score(task, components) if complete else None,
        "components": components,
        "human_baseline": dict(task.human_baseline),
        "human_score": metrics.task_score(task, task.human_baseline) if task.human_baseline else None,
    }


def parse_multi(body, max_instances: int, max_chars: int) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), dict) or not body["tasks"]:
        raise ApiError("expected {'tasks': {task: {'instances': [...], 'labels': [...]}, ...}}")
    return {name: parse_task_body(task_or_404(name), part, max_instances, max_chars)
            for name, part in body["tasks"].items()}


def summarize(results: dict[str, dict]) -> dict:
    complete = {name: r["components"] for name, r in results.items() if r["score"] is not None}
    summary = metrics.summarize(complete)
    return {
        "tasks": results,
        "mean_over_tasks": summary["mean_over_present"],
        "glue_score": summary["glue_score"],
        "missing_for_glue_score": summary["missing"],
        "summary": metrics.describe(summary),
        "human_glue_score": HUMAN_GLUE_SCORE,
    }


def total_instances(parsed_by_task: dict) -> int:
    return sum(len(labels) for parsed in parsed_by_task.values() for _, labels in parsed.values())

