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

A sweep of many CPU-hours may span machines (``sweeps/<backbone>/`` commits the
``point.json`` records, so another machine resumes at the next point). So a
record holds the settings it ran with, the precision as it ran included, and is
reused only under the same ones: ``--precision auto`` gives bfloat16 on one
CPU and float32 on another, and one sweep must not select among both.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np

from glue_tf import checkpoints, cpu, held_out, precision, recipes
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
# TrainConfig fields that cannot change what a point scores: left out of the settings a record is reused under.
_BOOKKEEPING = ("checkpoint_every", "logging_steps", "measure_export", "recipe")


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


def default_out(backbone: str) -> Path:
    """``sweeps/<backbone-name>``: the sweep's folder, beside the recipe it selects; its records are committed."""
    from glue_tf.config import project_root

    return project_root() / "sweeps" / recipes.backbone_name(backbone)


def settings(config: TrainConfig, policy: str) -> dict:
    """What a point's score depends on besides its recipe fields: the fixed config, with ``precision``
    the Keras policy it runs in (not ``auto``, which each machine decides for itself)."""
    fixed = {k: v for k, v in config.to_dict().items() if k not in (*recipes.RECIPE_FIELDS, *_BOOKKEEPING)}
    return {**fixed, "precision": policy}


def _run_point(task: Task, source: Source, config: TrainConfig, fixed: dict, point: dict, folder: Path, log) -> dict:
    """Trains one point's seeds (resuming), returns its record; a finished point's record is read back if it ran
    under the ``fixed`` settings."""
    from glue_tf.training import train_task

    record_path = folder / "point.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        _check_same_settings(record_path, record.get("settings", {}), fixed)
        log(f"tune {task.name} {point_name(point)}: done before ({record['mean']:.2f} ± {record['std']:.2f})")
        return record
    result = train_task(task, source, dataclasses.replace(config, **point), folder, log=log, verbose=0)
    scores = [s["best_score"] for s in result["seeds"]]
    record = {**point, "seeds": [s["seed"] for s in result["seeds"]], "scores": scores,
              "mean": float(np.mean(scores)), "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
              "precision": result["precision"]["policy"], "settings": fixed, "machine": cpu.describe()}
    checkpoints.atomic_write_text(record_path, json.dumps(record, indent=2))
    _drop_bulk(folder, task.name)
    log(f"tune {task.name} {point_name(point)}: held-out score {record['mean']:.2f} ± {record['std']:.2f}")
    return record


def _check_same_settings(record_path: Path, recorded: dict, wanted: dict) -> None:
    """Refuses a finished point that ran under other settings than this sweep's (another precision, say)."""
    differ = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
    if differ:
        ran = ", ".join(f"{k}={recorded.get(k)!r}" for k in differ)
        now = ", ".join(f"{k}={wanted.get(k)!r}" for k in differ)
        raise recipes.RecipeError(f"{record_path} ran with {ran}; this sweep has {now}. One sweep selects among "
                                  "points run alike: give the same settings (--precision float32, say), or another --out")


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
    fixed = settings(config, precision.resolve(config.precision, precision.Machine.detect())[0])
    for task in tasks:
        log(f"tune {task.name}: {len(grid_points)} points x {config.seeds} seeds on {sliced.describe()}")
        scored = [_run_point(task, sliced, config, fixed, p, out_dir / task.name / point_name(p), log)
                  for p in grid_points]
        best = select(scored)
        entry = {
            **{f: best[f] for f in recipes.RECIPE_FIELDS},
            "held_out_score_mean": best["mean"], "held_out_score_std": best["std"],
            "precision": best["precision"], "points": [{k: v for k, v in p.items() if k != "settings"} for p in scored],
            "sweep": {"seeds": recipes.seeds_of(config), "grid": grid, "settings": fixed},
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
    """What a reader needs to trust the recipe: the backbone and how it was selected (each task's entry holds its
    own sweep's grid, seeds and settings, and each point the machine it ran on: a sweep may span machines)."""
    return {
        "backbone": config.backbone,
        "selection": (f"per task, the grid point with the best mean held-out task score over "
                      f"{config.seeds} seeds; scored on {sliced.describe()}, never on dev"),
        "held_out": {"fraction": sliced.fraction, "seed": sliced.seed},
    }
