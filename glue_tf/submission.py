"""Test-split predictions in the GLUE leaderboard's format, and the submission zip.

Each file is ``index<TAB>prediction`` with a header: 0/1 for CoLA, SST-2, MRPC,
QQP and WNLI, a score in [0, 5] for STS-B, label names for MNLI, QNLI, RTE and
AX (``Task.submit_label_names``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from glue_tf.errors import NoPredictionsError
from glue_tf.tasks import TASKS, Task


def predictions_dir(out_dir) -> Path:
    return Path(out_dir) / "predictions"


def format_prediction(task: Task, value) -> str:
    if task.is_regression:
        return f"{float(np.clip(value, *task.score_range)):.3f}"
    if task.submit_label_names:
        return task.label_names[int(value)]
    return str(int(value))


def write_predictions(out_dir, task: Task, split: str, idx: np.ndarray, predictions: np.ndarray) -> Path:
    folder = predictions_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / task.test_splits[split]
    order = np.argsort(idx, kind="stable")
    lines = ["index\tprediction"] + [f"{int(idx[i])}\t{format_prediction(task, predictions[i])}" for i in order]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def expected_files() -> list[str]:
    return [name for task in TASKS.values() for name in task.test_splits.values()]


def make_zip(out_dir, zip_path=None) -> tuple[Path, list[str]]:
    """Zips the leaderboard files found; returns the zip and the files that are missing."""
    folder = predictions_dir(out_dir)
    zip_path = Path(zip_path) if zip_path else Path(out_dir) / "glue_submission.zip"
    present = [name for name in expected_files() if (folder / name).is_file()]
    missing = [name for name in expected_files() if name not in present]
    if not present:
        raise NoPredictionsError(f"no test predictions under {folder}; run `glue-tf train-all` first")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in present:
            archive.write(folder / name, arcname=name)
    return zip_path, missing


# --below-majority: whose answers a task below the majority class submits.
BELOW_MAJORITY_POLICIES = ("model", "majority")


def _model_copy(out_dir, name: str) -> Path:
    """Where the model's own file waits while the majority class stands in for it."""
    return predictions_dir(out_dir) / "model" / name


def use_majority(out_dir, task: Task, source, majority: bool) -> list[Path]:
    """Makes ``task``'s test files the training majority class (``majority``) or the model's own again.

    The model's files are kept under ``predictions/model/`` (outside the zip), so
    switching the policy back and forth never loses them. Returns the files changed.
    """
    from glue_tf import metrics

    changed = []
    for split, name in task.test_splits.items():
        path, kept = predictions_dir(out_dir) / name, _model_copy(out_dir, name)
        if majority and split in source.available_splits(task):
            if path.is_file() and not kept.is_file():
                kept.parent.mkdir(parents=True, exist_ok=True)
                path.replace(kept)
            constant = metrics.majority_prediction(task, [e["label"] for e in source.examples(task, "train")])
            idx = np.asarray([e["idx"] for e in source.examples(task, split)])
            changed.append(write_predictions(out_dir, task, split, idx, np.full(len(idx), constant)))
        elif not majority and kept.is_file():
            kept.replace(path)
            changed.append(path)
    return changed
