"""Wall clock to fine-tune and score several GLUE tasks, glue-tf against Hugging Face's trainer.

    python -m bench.end_to_end --glue-dir ../shared/glue_data --tasks cola,sst2,mrpc,stsb,rte,wnli

glue-tf runs as users run it (``glue-tf train-all``: tokenize, train, evaluate
every epoch, export, predict the test split); Hugging Face's ``Trainer`` runs
``run_glue.py``'s recipe per task (dynamic padding, dev evaluation at the end), each
task in a fresh process, at its best precision on this CPU (``--bf16`` where it has
bf16 units) and, there, at its float32 default too (``--hf-precisions``). Same checkpoint, epochs, batch size and learning rates
(glue-tf's per-task defaults). A full run of the six tasks takes hours on 2 cores;
``--max-train-examples`` makes a short one.

The contenders run in ``--rounds`` alternating rounds (:func:`bench.common.alternating_rounds`),
glue-tf into a fresh ``--out`` folder each round. One JSON line per run (``kind: end_to_end``, with
its ``round``) and a summary (``kind: end_to_end-ratio``): median walls, per task and whole, each
Hugging Face precision's median wall over glue-tf's, and the dev scores of every round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (BACKBONE, GLUE_DIR, REPO, alternating_rounds, append_json_lines, machine, median_ratios,
                          median_wall)
from bench.hf_predict import best_precision
from bench.speed import run_contender

OURS = "glue-tf"
HF = "hf-trainer"  # one contender per precision it runs at: hf-trainer-best, hf-trainer-float32


def run_glue_tf(args, tasks: list[str], out: Path) -> dict:
    command = [
        str(Path(sys.executable).with_name("glue-tf")), "train-all", "--glue-dir", args.glue_dir, "--backbone",
        args.backbone, "--epochs", str(args.epochs), "--tasks", ",".join(tasks), "--out", str(out),
        "--recipe", "none",  # the built-in per-task learning rates, which Hugging Face's runs are given too
    ]
    if args.max_train_examples:
        command += ["--max-train-examples", str(args.max_train_examples)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    rows = json.loads((out / "report.json").read_text())["tasks"]  # task scores in points
    return {"wall_seconds": round(wall, 1), "tasks": {t: rows[t]["score"] for t in tasks if t in rows},
            "task_walls": {t: rows[t].get("wall_seconds") for t in tasks if t in rows},  # within the one process
            "precision": ",".join(sorted({rows[t].get("precision") or "?" for t in tasks if t in rows}))}


def run_glue_tf_fresh(args, tasks: list[str]) -> dict:
    """``train-all`` into a fresh temporary ``--out``: a round must not resume the last one's run."""
    with tempfile.TemporaryDirectory(prefix="end-to-end-") as out:
        return run_glue_tf(args, tasks, Path(out))


def run_hf(args, tasks: list[str], precision: str) -> dict:
    """Hugging Face's trainer on each task in a fresh process; walls are whole processes. A run where a
    task failed has no ``wall_seconds`` (a failure must not count as a fast run)."""
    from glue_tf.config import TASK_LEARNING_RATES

    theirs = {"wall_seconds": 0.0, "tasks": {}, "task_walls": {}}
    for task in tasks:
        params = {"glue_dir": args.glue_dir, "task_name": task, "backbone": args.backbone, "epochs": args.epochs,
                  "learning_rate": TASK_LEARNING_RATES[task], "max_length": args.max_length,
                  "max_train_examples": args.max_train_examples, "precision": precision}
        started = time.perf_counter()
        figures = run_contender("finetune", "hf", params, timeout=6 * 3600)
        theirs["task_walls"][task] = round(time.perf_counter() - started, 1)  # the whole process
        theirs["wall_seconds"] += theirs["task_walls"][task]
        theirs["tasks"][task] = figures.get("dev_score", figures.get("error"))
        theirs["precision"] = figures.get("precision", precision)
        if "error" in figures:
            theirs["error"], theirs["task_walls"][task] = f"{task}: {figures['error']}", None
    wall = theirs.pop("wall_seconds")
    return theirs if "error" in theirs else {**theirs, "wall_seconds": round(wall, 1)}


def task_medians(records: list[dict], tasks: list[str]) -> dict[str, float]:
    """Each task's median wall over a contender's rounds (glue-tf's: inside its one process)."""
    walls = {task: [r["task_walls"][task] for r in records if (r.get("task_walls") or {}).get(task) is not None]
             for task in tasks}
    return {task: round(statistics.median(found), 1) for task, found in walls.items() if found}


def summary(found: dict[str, list[dict]], tasks: list[str], args) -> dict:
    """The ``end_to_end-ratio`` record: medians, and each Hugging Face precision's median over glue-tf's."""
    theirs = [name for name in found if name != OURS]
    return {"kind": "end_to_end-ratio", "tasks": tasks, "epochs": args.epochs, "rounds": args.rounds,
            "max_train_examples": args.max_train_examples,
            "median_wall_seconds": {name: median_wall(records) for name, records in found.items()},
            "task_median_walls": {name: task_medians(records, tasks) for name, records in found.items()},
            "precision": {name: next((r["precision"] for r in records if r.get("precision")), None)
                          for name, records in found.items()},
            "vs_hf": {name: median_ratios({name: found[name], OURS: found[OURS]}, name).get(OURS) for name in theirs},
            "dev_scores": {name: [r.get("tasks") for r in records] for name, records in found.items()}}


def medians_line(verdict: dict) -> str:
    walls, precision = verdict["median_wall_seconds"], verdict["precision"]
    shown = [f"glue-tf {walls[OURS] or 0:.0f} s"]
    shown += [f"Hugging Face ({precision[name]}) {walls[name] or 0:.0f} s ({verdict['vs_hf'][name] or 0:.2f}x)"
              for name in verdict["vs_hf"]]
    return f"median wall over {verdict['rounds']} rounds: " + "; ".join(shown)


def _hf_precisions(requested: str) -> list[str]:
    if requested != "auto":
        return requested.split(",")
    return ["best", "float32"] if best_precision()[0] == "bfloat16" else ["best"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--tasks", default="cola,sst2,mrpc,stsb,rte,wnli")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-examples", type=int, default=None)
    parser.add_argument("--hf-precisions", default="auto",
                        help="Hugging Face's runs: best (bf16 where the CPU has bf16 units), float32, or both; "
                             "auto: best, and float32 too where best is bf16")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; ratios of the median walls")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")

    here = machine()
    print(json.dumps({"kind": "context", "machine": here, "tasks": tasks, "epochs": args.epochs}), flush=True)
    runs = {OURS: lambda: run_glue_tf_fresh(args, tasks)}
    runs.update({f"{HF}-{precision}": (lambda precision=precision: run_hf(args, tasks, precision))
                 for precision in _hf_precisions(args.hf_precisions)})
    head = {"kind": "end_to_end", "epochs": args.epochs, "max_train_examples": args.max_train_examples}
    found = alternating_rounds(runs, args.rounds, on_record=lambda name, record: print(
        json.dumps({**head, "contender": name, **record}), flush=True))
    verdict = summary(found, tasks, args)
    print(json.dumps(verdict), flush=True)
    records = [{**head, "contender": name, **record} for name, records_of in found.items() for record in records_of]
    append_json_lines(args.json_out, records + [verdict], here)
    print(medians_line(verdict))
    return 1 if any("error" in r for r in records) else 0

if __name__ == "__main__":
    sys.exit(main())
