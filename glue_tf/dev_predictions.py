"""Each seed's dev predictions, kept in the run folder so intervals and comparisons can be recomputed.

One ``dev_predictions.npz`` per seed, beside its ``seed.json`` (``RunDir.work``):
for every dev split, ``<split>/idx``, ``<split>/labels`` and ``<split>/predictions``
(label ids, or STS-B scores clipped to the task's range), as the official metrics
read them. Bootstrap intervals (:mod:`glue_tf.intervals`) and ``glue-tf compare``
resample these rows; nothing has to be run again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glue_tf.run_dir import RunDir

FILE_NAME = "dev_predictions.npz"


def keep(task, model, files, dev: dict, predictor, write: bool, known: dict | None = None) -> None:
    """Saves the dev predictions of the seed's best weights (``files``: its ``run_dir.SeedFiles``) once.

    ``known``: those predictions, where this process trained the best epoch and so
    computed them already (``callbacks.EpochTracker.best_predictions``). Otherwise
    the best weights are loaded into ``model`` and ``predictor`` (a
    :class:`glue_tf.evaluation.KerasScorer` of it) predicts ``dev``; the caller
    loads the weights it exports afterwards. A seed whose file exists is not predicted again.
    """
    path = files.folder / FILE_NAME
    if not write or path.is_file():
        return
    if known is None:
        if files.best_weights.is_file():
            model.load_weights(files.best_weights)
        known = predictor.predictions(task, dev)
    arrays = {}
    for split, encoded in dev.items():
        arrays.update({f"{split}/idx": encoded.idx, f"{split}/labels": encoded.labels,
                       f"{split}/predictions": known[split]})
    save(path, arrays)


def save(path: Path, arrays: dict) -> None:
    """Writes ``arrays`` to ``path`` atomically (a kill leaves the old file or none)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {"idx", "labels", "predictions"}}`` from one seed's file."""
    with np.load(path) as data:
        splits: dict[str, dict] = {}
        for key in data.files:
            split, field = key.rsplit("/", 1)
            splits.setdefault(split, {})[field] = data[key]
    return splits


def seed_paths(out_dir, task_name: str, result: dict) -> list[Path]:
    """The prediction files of every seed of ``result`` (a task's ``result.json``), in its seed order."""
    seeds = [entry["seed"] for entry in result.get("seeds") or []]
    run = RunDir(out_dir)
    if len(seeds) <= 1:
        return [run.seed_files(task_name).folder / FILE_NAME] if seeds else []
    return [run.seed_files(task_name, seed).folder / FILE_NAME for seed in seeds]


def load_run(out_dir, task_name: str, result: dict) -> list[dict] | None:
    """Every seed's dev predictions of a task in a run folder, or None if any seed's file is missing
    (a run made before they were kept, or a task only scored with an existing export)."""
    paths = seed_paths(out_dir, task_name, result)
    if not paths or not all(path.is_file() for path in paths):
        return None
    return [load(path) for path in paths]
