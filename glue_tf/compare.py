"""``glue-tf compare RUN_A RUN_B``: is the difference between two runs real, or dev-set noise?

Per task both runs hold, and for their mean (the GLUE score where all nine are
there): the difference A − B of the mean-over-seeds dev scores, its 95%
paired-bootstrap interval over the same dev examples (:mod:`glue_tf.intervals`),
and each run's seed spread. An interval that covers 0 reads "no difference shown".
A task whose dev examples differ between the runs (another data source, a
``--max-eval-examples`` sample) cannot be paired and is refused, by name.
"""

from __future__ import annotations

import json

import numpy as np

from glue_tf import dev_predictions, intervals
from glue_tf.errors import GlueTfError
from glue_tf.run_dir import RunDir
from glue_tf.tasks import GLUE_TASKS, TASKS

NO_DIFFERENCE = "no difference shown"


class CompareError(GlueTfError):
    """The two folders have no task that can be compared."""


def load_run(folder) -> dict[str, dict]:
    """Task name -> ``{"result", "seeds"}`` for every GLUE task of a ``train``/``train-all`` folder whose seeds'
    dev predictions are kept (``seeds``: :func:`glue_tf.dev_predictions.load_run`)."""
    run = RunDir(folder)
    found = {}
    for name in GLUE_TASKS:
        path = run.result(name)
        if path.is_file():
            result = json.loads(path.read_text(encoding="utf-8"))
            seeds = dev_predictions.load_run(folder, name, result)
            if seeds:
                found[name] = {"result": result, "seeds": seeds}
    return found


def _same_examples(a: list[dict], b: list[dict]) -> str:
    """Why two runs' dev examples cannot be paired ('' if they can)."""
    if sorted(a[0]) != sorted(b[0]):
        return f"dev splits differ ({', '.join(sorted(a[0]))} vs {', '.join(sorted(b[0]))})"
    for split in a[0]:
        if not np.array_equal(a[0][split]["idx"], b[0][split]["idx"]):
            return f"{split}: the runs scored different dev examples (idx differ)"
        if not np.array_equal(a[0][split]["labels"], b[0][split]["labels"]):
            return f"{split}: the same idx carry different labels (another data source?)"
    return ""


def _spread(result: dict) -> float | None:
    scores = [s["best_score"] for s in result.get("seeds") or []]
    return float(np.std(scores, ddof=1)) if len(scores) > 1 else None


def compare(folder_a, folder_b) -> dict:
    """The comparison as a JSON-able dict: ``tasks``, ``mean``, ``refused`` (task -> reason), ``only_in``."""
    run_a, run_b = load_run(folder_a), load_run(folder_b)
    common = [name for name in GLUE_TASKS if name in run_a and name in run_b]
    refused = {name: why for name in common if (why := _same_examples(run_a[name]["seeds"], run_b[name]["seeds"]))}
    paired = [name for name in common if name not in refused]
    if not paired:
        raise CompareError(
            f"{folder_a} and {folder_b} share no task with kept dev predictions and the same dev examples"
            + (f" (refused: {'; '.join(f'{n}: {w}' for n, w in refused.items())})" if refused else "")
        )
    found = intervals.paired_difference({n: run_a[n]["seeds"] for n in paired}, {n: run_b[n]["seeds"] for n in paired},
                                        {n: TASKS[n] for n in paired})
    tasks = {}
    for name in paired:
        row = found["tasks"][name]
        tasks[name] = {**row, "verdict": _verdict(row["ci95"]), "spread_a": _spread(run_a[name]["result"]),
                       "spread_b": _spread(run_b[name]["result"])}
    mean = {**found["mean"], "verdict": _verdict(found["mean"]["ci95"]),
            "label": "GLUE score" if len(paired) == len(GLUE_TASKS) else f"mean over {len(paired)} tasks"}
    only = sorted(set(run_a) ^ set(run_b))
    return {"a": str(folder_a), "b": str(folder_b), "tasks": tasks, "mean": mean, "refused": refused, "only_in_one": only}


def _verdict(ci95: list[float]) -> str:
    return "difference shown" if intervals.shows_difference(ci95) else NO_DIFFERENCE


def _line(label: str, row: dict) -> str:
    def spread(value):
        return "–" if value is None else f"±{value:.2f}"

    lo, hi = row["ci95"]
    seeds = f"; seed std A {spread(row.get('spread_a'))}, B {spread(row.get('spread_b'))}" if "spread_a" in row else ""
    return (f"{label}: A − B = {row['difference']:+.2f} points, 95% CI [{lo:+.2f}, {hi:+.2f}] ({row['method']}): "
            f"{row['verdict']}{seeds}")


def to_text(comparison: dict) -> str:
    """The comparison for a terminal: one line per task, then the mean, then what was left out."""
    lines = [f"A = {comparison['a']}", f"B = {comparison['b']}"]
    lines += [_line(TASKS[name].display_name, row) for name, row in comparison["tasks"].items()]
    lines.append(_line(comparison["mean"]["label"], comparison["mean"]))
    lines += [f"{TASKS[n].display_name}: refused, {why}" for n, why in comparison["refused"].items()]
    if comparison["only_in_one"]:
        lines.append("only in one run (not compared): " + ", ".join(TASKS[n].display_name for n in comparison["only_in_one"]))
    return "\n".join(lines)
