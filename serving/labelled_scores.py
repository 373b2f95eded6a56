"""Official GLUE metrics on labelled requests, with the human baseline beside each number.

All numbers are points (0-100), as on the leaderboard. A task's score is given
only when every split it needs is present (MNLI: matched and mismatched); the
GLUE score only when all nine tasks are (``glue_tf.metrics.summarize``).
"""

from __future__ import annotations

from glue_tf import metrics
from glue_tf.tasks import TASKS, Task
from serving.errors import ApiError
from serving.schemas import Limits, labelled_splits, task_or_404, validate


def parse_task(task: Task, body, limits: Limits) -> dict:
    """One task's scoring body -> ``{split: (columns, labels)}``."""
    validate(body, "score", task, limits)
    return labelled_splits(task, body, limits)


def parse_many(body, limits: Limits) -> dict[str, dict]:
    """``{"tasks": {task: body}}`` -> ``{task: {split: (columns, labels)}}``."""
    validate(body, "score_many", None, limits)
    return {name: labelled_splits(TASKS[name], part, limits) for name, part in body["tasks"].items()}


def parse_job(body, limits: Limits) -> tuple[dict[str, dict], bool]:
    """A job body (one task with ``"task"``, or ``"tasks"``) -> (parsed per task, whether it is multi-task)."""
    if isinstance(body, dict) and "tasks" in body:
        return parse_many(body, limits), True
    if not isinstance(body, dict) or not isinstance(body.get("task"), str):
        raise ApiError("a job is {'task': <name>, 'instances': [...], 'labels': [...]} (or 'splits'), "
                       "or {'tasks': {<name>: {...}}}")
    task = task_or_404(body["task"])
    validate(body, "job", task, limits)
    return {task.name: labelled_splits(task, {k: v for k, v in body.items() if k != "task"}, limits)}, False


def score_splits(task: Task, splits: dict, predict) -> dict:
    """``predict(columns) -> outputs``; returns metrics per split, the task score and the human row."""
    return score_predictions(task, {split: (labels, metrics.predictions_from_outputs(task, predict(columns)))
                                    for split, (columns, labels) in splits.items()})


def plan_chunks(parsed: dict[str, dict], size: int) -> list[tuple[str, str, int, int]]:
    """A job's work in pieces any worker can score: ``(task, split, start, stop)``, at most ``size`` each."""
    return [(name, split, start, min(start + size, len(labels)))
            for name, splits in parsed.items() for split, (_, labels) in splits.items()
            for start in range(0, len(labels), size)]


def score_predictions(task: Task, splits: dict) -> dict:
    """``{split: (labels, predictions)}`` -> metrics per split, the task score and the human row."""
    per_split = {split: metrics.compute_metrics(task, labels, predictions)
                 for split, (labels, predictions) in splits.items()}
    components = metrics.score_components(task, per_split)
    return {
        "task": task.name,
        "examples": {split: len(labels) for split, (labels, _) in splits.items()},
        "metrics": per_split,
        "score": metrics.complete_score(task, components),
        "components": components,
        "human_baseline": dict(task.human_baseline),
        "human_score": metrics.human_score(task),
    }


def summarize(results: dict[str, dict]) -> dict:
    complete = {name: r["components"] for name, r in results.items() if r["score"] is not None}
    summary = metrics.summarize(complete)
    return {
        "tasks": results,
        "mean_over_tasks": summary["mean_over_present"],
        "glue_score": summary["glue_score"],
        "missing_for_glue_score": summary["missing"],
        "summary": metrics.describe(summary),
        "human_glue_score": metrics.human_glue_score(),
    }


def total_instances(parsed_by_task: dict) -> int:
    return sum(len(labels) for splits in parsed_by_task.values() for _, labels in splits.values())
