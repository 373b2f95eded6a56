"""What the benchmark scripts share: paths, seeds, the machine record and the profiled model.

The scripts run as modules from the repository root (``python -m bench.speed``), so
``glue_tf`` and ``bench`` import without editing ``sys.path``; a script that runs
another in a fresh process runs it the same way (:func:`module_command`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from glue_tf.config import default_backbone_path

REPO = Path(__file__).resolve().parents[1]
# The MiniLM checkpoint folder every contender reads (``make pretrained``), and the GLUE TSV folder.
BACKBONE = str(default_backbone_path())
GLUE_DIR = os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue_data"))
SEED = 42  # the seed of the contenders that are not glue-tf (glue-tf's is TrainConfig's)
TRAIN_BATCH = 32  # examples per optimizer step, every training contender and profile
INFERENCE_BATCH = 64  # rows per call, every inference contender
# The CPU features the figures depend on: oneDNN's and XLA's kernels, and bf16 units (glue_tf.precision).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
# Keras' dtype policy for each precision a profile runs: bf16 compute on float32 variables, as glue-tf trains.
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"  # read once, when TensorFlow is imported: the profiles set it per child process


def module_command(module: str, *args: str) -> list[str]:
    """The command that runs ``bench.<module>`` in a fresh interpreter (with ``cwd=REPO``)."""
    return [sys.executable, "-m", f"bench.{module}", *args]


def onednn_states(requested: str) -> list[str]:
    """``--onednn on,off`` as the values of :data:`ONEDNN` that the children run under, in that order."""
    return [{"on": "1", "off": "0"}[state] for state in requested.split(",")]


def child_or_parent(argv: list[str] | None, child, parent) -> int:
    """``main`` of a script that measures in fresh processes of itself (:func:`child_rows`): with ``--child``
    first, ``child`` gets the other arguments (``argv``, else the command line's); otherwise ``parent`` gets all."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1:])
        return 0
    return parent(argv)


def child_rows(module: str, mark: str, args: list[str], onednn: str | None, what: str) -> list[dict]:
    """Runs ``bench.<module> --child *args`` in a fresh interpreter, with :data:`ONEDNN` set to ``onednn`` unless
    None, and returns the JSON rows it printed after ``mark``. None where it failed: then the tail of its error
    goes to stderr as ``<what> failed: ...``, and the other measurements go on."""
    env = {**os.environ, **({ONEDNN: onednn} if onednn else {})}
    done = subprocess.run(module_command(module, "--child", *args), capture_output=True, text=True, cwd=REPO, env=env)
    rows = [json.loads(line[len(mark):]) for line in done.stdout.splitlines() if line.startswith(mark)]
    if not rows:
        print(f"{what} failed: {done.stderr.strip().splitlines()[-3:]}", file=sys.stderr)
    return rows


def machine() -> dict:
    """The record every JSON line carries: CPU model and flags, core count, library versions, date."""
    import importlib.metadata as md

    from glue_tf import cpu

    versions = {}
    for package in ("tensorflow", "keras", "keras-hub", "torch", "transformers"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    flags = cpu.flags()
    isa = [f for f in ISA_FLAGS if f in flags]
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "cpu_model": cpu.model_name(), "isa": isa,
            "versions": versions, "date": time.strftime("%Y-%m-%d")}


def alternating_rounds(runs: dict[str, Callable[[], dict]], rounds: int, on_record=None) -> dict[str, list[dict]]:
    """Runs every contender once a round, one after another, the order reversed every other round, and
    returns each contender's records (with their ``round``) in round order.

    Whole-process times on these shared 2-core machines move by about 10% between rounds, and a contender
    that always ran second would carry the machine's drift: ratios quote the medians (:func:`median_wall`).
    ``on_record(name, record)`` after each run (to print it).
    """
    names, found = list(runs), {name: [] for name in runs}
    for number in range(1, rounds + 1):
        for name in names if number % 2 else names[::-1]:
            record = {**runs[name](), "round": number}
            found[name].append(record)
            if on_record:
                on_record(name, record)
    return found


def median_wall(records: list[dict]) -> float | None:
    """The median ``wall_seconds`` of a contender's rounds (None if none finished)."""
    walls = [record["wall_seconds"] for record in records if "wall_seconds" in record]
    return round(statistics.median(walls), 2) if walls else None


def median_ratios(found: dict[str, list[dict]], baseline: str) -> dict[str, float]:
    """The baseline's median wall over each other contender's: how many times faster it is (above 1)."""
    base = median_wall(found.get(baseline, []))
    walls = {name: median_wall(records) for name, records in found.items() if name != baseline}
    return {name: round(base / wall, 2) for name, wall in walls.items() if base and wall}


def append_json_lines(path, records: list[dict], here: dict | None = None) -> None:
    """Appends ``records`` to ``path`` (nothing if None), each with this machine's record."""
    if not path:
        return
    here = here or machine()
    with open(path, "a", encoding="utf-8") as sink:
        for record in records:
            sink.write(json.dumps({**record, "machine": here}) + "\n")


def recipe(backbone: str, task_name: str = "cola", **overrides):
    """glue-tf's recipe (``glue_tf.task_model.TaskModel``) for a task, at the benchmarks' batch size."""
    from glue_tf.config import TrainConfig
    from glue_tf.task_model import TaskModel
    from glue_tf.tasks import get_task

    return TaskModel(get_task(task_name), TrainConfig(backbone=backbone, batch_size=TRAIN_BATCH, **overrides))


def profiled_model(backbone: str, precision: str, length: int):
    """``(recipe, model, x, y)``: the CoLA classifier of ``glue-tf train`` under ``precision``'s policy (not
    compiled: the profiles time its parts), and one batch of random token ids at a fixed ``length``."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(KERAS_POLICIES[precision])
    task_model = recipe(backbone, learning_rate=1e-4)
    model = task_model.head(task_model.load_backbone()[0])
    rng = np.random.default_rng(0)
    x = {"token_ids": tf.constant(rng.integers(1000, 20000, (TRAIN_BATCH, length)), tf.int32),
         "segment_ids": tf.zeros((TRAIN_BATCH, length), tf.int32),
         "padding_mask": tf.ones((TRAIN_BATCH, length), tf.bool)}
    y = tf.constant(rng.integers(0, 2, TRAIN_BATCH))
    return task_model, model, x, y
