"""``glue-tf data check`` and ``glue-tf data show``: look at the data as the pipeline sees it."""

from __future__ import annotations

import json
import sys

from glue_tf.data.errors import DataError, MissingDataError
from glue_tf.data.sources import Source, label_distribution
from glue_tf.tasks import Task


def _format_distribution(dist: dict) -> str:
    return ", ".join(
        f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}" for key, value in dist.items()
    )


def check(source: Source, tasks: list[Task], out=sys.stdout) -> dict:
    """Prints per task and split the example count and label distribution.

    Returns ``{task: {split: {"count", "labels"}}}`` for present splits, plus
    ``missing`` (task -> reason) and ``errors`` (task/split -> message).
    """
    print(f"source: {source.describe()}", file=out)
    summary = {"tasks": {}, "missing": {}, "errors": {}}
    for task in tasks:
        splits = source.available_splits(task)
        if not splits:
            reason = source.missing_reason(task) or "no splits found"
            summary["missing"][task.name] = reason
            print(f"{task.display_name:6s} MISSING  {reason}", file=out)
            continue
        summary["tasks"][task.name] = {}
        for split in splits:
            try:
                examples = source.examples(task, split)
            except (DataError, MissingDataError) as error:
                summary["errors"][f"{task.name}/{split}"] = str(error)
                print(f"{task.display_name:6s} {split:22s} ERROR {error}", file=out)
                continue
            dist = label_distribution(task, examples)
            summary["tasks"][task.name][split] = {"count": len(examples), "labels": dist}
            print(f"{task.display_name:6s} {split:22s} {len(examples):7d}  {_format_distribution(dist)}", file=out)
        absent = [split for split in task.splits if split not in splits]
        if absent:
            print(f"{task.display_name:6s} {'':22s} not available: {', '.join(absent)}", file=out)
    if summary["missing"]:
        names = ", ".join(source_task.upper() for source_task in summary["missing"])
        print(f"missing tasks: {names}", file=out)
    return summary


def show(source: Source, task: Task, split: str, limit: int = 10, as_json: bool = False, out=sys.stdout) -> int:
    """Prints examples of one split (``limit`` 0: all); returns how many were printed."""
    examples = source.examples(task, split)
    if limit:
        examples = examples[:limit]
    for example in examples:
        if as_json:
            print(json.dumps(example, ensure_ascii=False), file=out)
            continue
        label = example["label"]
        if task.is_regression:
            label_text = "unlabelled" if label < 0 else f"{label:.3f}"
        else:
            label_text = "unlabelled" if label < 0 else f"{label} {task.label_names[label]}"
        texts = " | ".join(f"{f}: {example[f]}" for f in task.text_features)
        print(f"[{example['idx']}] ({label_text}) {texts}", file=out)
    return len(examples)
