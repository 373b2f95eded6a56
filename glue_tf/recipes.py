"""Per-backbone recipes: the per-task training settings a sweep (``glue-tf tune``) selected.

A recipe is ``recipes/<backbone-name>.json``: per task the chosen
``RECIPE_FIELDS`` and every grid point's held-out score (mean ± std over the
sweep's seeds), the precision the sweep ran in, and the sweep's seeds. ``train``
and ``train-all`` read it (``--recipe FILE``; by default the committed recipe of
the default backbone where there is one; ``--recipe none``: the built-in
defaults), and a flag given on the command line wins over the recipe's field.

Fresh seeds: a figure reported on dev must come from seeds the sweep did not
see, so training with a recipe refuses seeds that the sweep used
(:func:`check_fresh_seeds`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from glue_tf.config import DEFAULT_BACKBONE, TrainConfig, project_root
from glue_tf.errors import GlueTfError

# The settings a sweep chooses per task; every one is a TrainConfig field.
RECIPE_FIELDS = ("learning_rate", "epochs", "batch_size", "warmup_fraction", "dropout")
NO_RECIPE = "none"


class RecipeError(GlueTfError):
    """A recipe file that is missing or malformed, or seeds that the recipe's sweep already used."""


def folder() -> Path:
    return project_root() / "recipes"


def backbone_name(backbone: str) -> str:
    """The recipe's file stem for a backbone spec: a preset name, or a folder's last part."""
    return Path(str(backbone).rstrip("/")).name


def path_for(backbone: str) -> Path:
    return folder() / f"{backbone_name(backbone)}.json"


def resolve(flag: str | None, backbone: str) -> str | None:
    """The recipe file ``--recipe`` names (None: the committed one of the default backbone, if any)."""
    if flag is None:
        committed = path_for(backbone)
        return str(committed.relative_to(project_root())) if backbone == DEFAULT_BACKBONE and committed.is_file() else None
    if flag.lower() == NO_RECIPE:
        return None
    return flag


def _locate(path: str) -> Path:
    """``path`` as given, else relative to the project root (how the default is recorded)."""
    given = Path(path)
    return given if given.is_file() or given.is_absolute() else project_root() / given


def load(path: str) -> dict:
    located = _locate(path)
    if not located.is_file():
        raise RecipeError(f"--recipe {path}: no such file (give a recipe JSON, or --recipe none for the built-in defaults)")
    recipe = json.loads(located.read_text(encoding="utf-8"))
    for name, entry in recipe.get("tasks", {}).items():
        missing = [f for f in RECIPE_FIELDS if f not in entry]
        if missing:
            raise RecipeError(f"{located}: tasks.{name} lacks {', '.join(missing)}")
    return recipe


def task_config(config: TrainConfig, task_name: str, explicit: frozenset = frozenset()) -> TrainConfig:
    """``config`` with the recipe's fields for ``task_name`` filled in, except the ``explicit`` flags."""
    if not config.recipe:
        return config
    entry = load(config.recipe).get("tasks", {}).get(task_name)
    if entry is None:
        return config
    return dataclasses.replace(config, **{f: entry[f] for f in RECIPE_FIELDS if f not in explicit})


def seeds_of(config: TrainConfig) -> list[int]:
    """The seed numbers a run of ``config`` trains (``seed .. seed + seeds - 1``)."""
    return [config.seed + k for k in range(config.seeds)]


def check_fresh_seeds(config: TrainConfig) -> None:
    """Refuses to train with a recipe on seeds its sweep used: that figure would have been selected on."""
    if not config.recipe:
        return
    recipe = load(config.recipe)
    used = set(recipe.get("sweep", {}).get("seeds", []))  # one sweep for every task, as a hand-written recipe says
    for entry in recipe.get("tasks", {}).values():  # each task's own sweep, as glue-tf tune writes it
        used |= set(entry.get("sweep", {}).get("seeds", []))
    reused = sorted(used & set(seeds_of(config)))
    if reused:
        raise RecipeError(
            f"--seed {config.seed} --seeds {config.seeds} reuses seeds {reused} that the sweep of {config.recipe} "
            f"selected the recipe with; pick seeds outside {sorted(used)} (the default --seed {TrainConfig.seed} is)"
        )


def explicit_fields(argv: list[str]) -> frozenset:
    """The ``TrainConfig`` fields that ``argv`` sets with a flag (which then win over the recipe).

    The flags are parsed twice with two different defaults: a field that comes out
    different both times was not given.
    """
    from glue_tf import config_flags

    parsed = []
    for marker in (object(), object()):  # not strings: argparse would convert a string default with the flag's type
        parser = argparse.ArgumentParser(add_help=False)
        config_flags.add_flags(parser)
        parser.set_defaults(**{field.name: marker for field in dataclasses.fields(TrainConfig)})
        parsed.append(vars(parser.parse_known_args(argv)[0]))
    return frozenset(name for name, value in parsed[0].items() if value == parsed[1][name])
