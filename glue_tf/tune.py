"""``glue-tf tune``: a per-task grid sweep that writes the backbone's recipe (``glue_tf.recipes``).

Every grid point trains ``config.seeds`` seeds through the same ``train_task``
as ``train`` (bucketing, per-epoch evaluation, checkpoints and resume are
ours), on the training split minus a seeded 10% slice, and is scored on that
slice (:class:`glue_tf.held_out.HeldOutSource`), never on dev. The point with
the best mean held-out score over its seeds wins (ties: the smaller std, then
the earlier point). The recipe records every point's mean ± std, the sweep's
seeds and the precision it ran in.

A plain grid, not KerasTuner: KerasTuner drives ``model.fit`` through its own
trial loop and oracle, whereas a point here is a whole ``train_task`` (a
length-bucketed batch plan per epoch, dev scoring with the official metrics
after every epoch with the best epoch kept, step checkpoints that resume mid
epoch); wrapping that in a ``HyperModel`` would hide our resume under
KerasTuner's and buy nothing a grid of at most a dozen points needs.

Resume: a point whose ``point.json`` exists is skipped; an interrupted one
resumes from its seeds' checkpoints. A finished point keeps its seeds' records
and held-out predictions, and drops its export and checkpoints (disk).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np

from glue_tf import checkpoints, held_out, recipes
from glue_tf.config import TrainConfig
from glue_tf.data.sources import Source
from glue_tf.run_dir import RunDir
from glue_tf.runlog import RunLog
from glue_tf.tasks import Task

# The default grid: 3 x 2 = 6 points, each field one of recipes.RECIPE_FIELDS. Batch 16 is not in it: what it
# buys over batch 32 is more updates, which the 5-epoch points (best epoch kept) already try, and on a CPU
# its points are the dearer half of the grid (twice the updates per epoch, smaller products). A sweep of
# the five small tasks is still many hours of a 2-core machine (docs/RESULTS.md). ``--grid-batch-size 16,32``
# puts it back.
DEFAULT_GRID = {
    "learning_rate": [5e-5, 1e-4, 2e-4],
    "epochs": [3, 5],
    "batch_size": [32],
    "warmup_fraction": [0.1],
    "dropout": [0.1],
}
# The sweep's seeds start here, far from train-all's default --seed 42, so reported figures come from fresh seeds.
SEED = 1000
SEEDS = 3


def points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in order (the last field varies fastest)."""
    missing = [f for f in recipes.RECIPE_FIELDS if not grid.get(f)]
    if missing:
        raise recipes.RecipeError(f"tune: the grid has no values for {', '.join(missing)}")
    fields = list(recipes.RECIPE_FIELDS)
    return [dict(zip(fields, values)) for values in itertools.product(*(grid[f] for f in fields))]


def point_name(point: dict) -> str:
    """The point's folder name: ``lr1e-04_ep3_bs32_wu0.1_do0.1``."""
    return (f"lr{point['learning_rate']:.0e}_ep{point['epochs']}_bs{point['batch_size']}"
            f"_wu{point['warmup_fraction']:g}_do{point['dropout']:g}")


def select(scored: list[dict]) -> dict:
    """The winning point: best mean held-out score; ties go to the smaller std, then the earlier point."""
    return min(enumerate(scored), key=lambda item: (-item[1]["mean"], item[1]["std"], item[0]))[1]


def _run_point(task: Task, source: Source, config: TrainConfig, point: dict, folder: Path, log) -> dict:
    """Trains one point's seeds (resuming), returns its record; a finished point's record is read back."""
    from glue_tf.training import train_task

    record_path = folder / "point.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        log(f"tune {task.name} {point_name(point)}: done before ({record['mean']:.2f} ± {record['std']:.2f})")
        return record
    result = train_task(task, source, dataclasses.replace(config, **point), folder, log=log, verbose=0)
    scores = [s["best_score"] for s in result["seeds"]]
    record = {**point, "seeds": [s["seed"] for s in result["seeds"]], "scores": scores,
              "mean": float(np.mean(scores)), "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
              "precision": result["precision"]["policy"]}
    checkpoints.atomic_write_text(record_path, json.dumps(record, indent=2))
    _drop_bulk(folder, task.name)
    log(f"tune {task.name} {point_name(point)}: held-out score {record['mean']:.2f} ± {record['std']:.2f}")
    return record


def _drop_bulk(folder: Path, task_name: str) -> None:
    """Removes a finished point's export, TensorBoard runs, weights and checkpoints; keeps its records."""
    run = RunDir(folder)
    shutil.rmtree(run.models, ignore_errors=True)
    shutil.rmtree(run.tensorboard(task_name), ignore_errors=True)
    for path in run.work(task_name).rglob("*"):
        if path.name == "checkpoint" and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name == "best.weights.h5":
            path.unlink(missing_ok=True)


def tune(source: Source, config: TrainConfig, tasks: list[Task], grid: dict[str, list], out_dir,
         recipe_path: Path | None = None) -> dict:
    """Sweeps ``grid`` for each task on a held-out slice of its training split; writes and returns the recipe.

    The recipe goes to ``recipe_path`` (default ``recipes/<backbone-name>.json``); tasks it already
    holds from earlier sweeps are kept unless swept again. It is written as each task's sweep ends, so
    a sweep of many CPU-hours that is stopped keeps the tasks it finished.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(out_dir / "tune.log")
    sliced = held_out.HeldOutSource(source)
    config = dataclasses.replace(config, measure_export=False, recipe=None)
    recipe_path = Path(recipe_path) if recipe_path else recipes.path_for(config.backbone)
    recipe = {"tasks": {}}
    grid_points = points(grid)
    for task in tasks:
        log(f"tune {task.name}: {len(grid_points)} points x {config.seeds} seeds on {sliced.describe()}")
        scored = [_run_point(task, sliced, config, p, out_dir / task.name / point_name(p), log) for p in grid_points]
        best = select(scored)
        entry = {
            **{f: best[f] for f in recipes.RECIPE_FIELDS},
            "held_out_score_mean": best["mean"], "held_out_score_std": best["std"],
            "precision": best["precision"], "points": scored,
            "sweep": {"seeds": recipes.seeds_of(config), "grid": grid},
        }
        log(f"tune {task.name}: chose {point_name(best)} ({best['mean']:.2f} ± {best['std']:.2f})")
        recipe = _write_task(recipe_path, task.name, entry, _provenance(config, sliced))
        log(f"tune: recipe written to {recipe_path} ({task.name} added)")
    return recipe


def _write_task(recipe_path: Path, task_name: str, entry: dict, provenance: dict) -> dict:
    """Adds one task's entry to the recipe file as it is now, under a lock; returns the recipe written.

    The file is read again here, not at the sweep's start: two sweeps of different tasks (the small
    tasks' grid and SST-2's, say) run for hours side by side, and each must keep what the other wrote.
    """
    import fcntl

    recipe_path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(recipe_path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        recipe = json.loads(recipe_path.read_text(encoding="utf-8")) if recipe_path.is_file() else {}
        recipe.setdefault("tasks", {})[task_name] = entry
        recipe.update(provenance)
        checkpoints.atomic_write_text(recipe_path, json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    finally:
        os.close(folder)  # releases the lock
    return recipe


def _provenance(config: TrainConfig, sliced: held_out.HeldOutSource) -> dict:
    """What a reader needs to trust the recipe: the backbone, how it was selected, the machine (each task's
    entry holds its own sweep's grid and seeds)."""
    from glue_tf import cpu

    return {
        "backbone": config.backbone,
        "selection": (f"per task, the grid point with the best mean held-out task score over "
                      f"{config.seeds} seeds; scored on {sliced.describe()}, never on dev"),
        "held_out": {"fraction": sliced.fraction, "seed": sliced.seed},
        "base_config": {k: v for k, v in config.to_dict().items() if k not in recipes.RECIPE_FIELDS},
        "machine": {"cpu": cpu.model_name(), "cores": os.cpu_count()},
    }
