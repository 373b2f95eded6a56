"""Wall clock to fine-tune and score several GLUE tasks, glue-tf against Hugging Face's trainer.

    python -m bench.end_to_end --glue-dir ../shared/glue_data --tasks cola,sst2,mrpc,stsb,rte,wnli

glue-tf runs as users run it (``glue-tf train-all``: tokenize, train, evaluate
every epoch, export, predict the test split); Hugging Face's ``Trainer`` runs
``run_glue.py``'s recipe per task (dynamic padding, dev evaluation at the end), each
task in a fresh process, at its best precision on this CPU (``--bf16`` where it has
bf16 units) and, there, at its float32 default too (``--hf-precisions``). Same checkpoint, epochs, batch size and learning rates
(glue-tf's per-task defaults). A full run of the six tasks takes hours on 2 cores;
``--max-train-examples`` makes a short one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BACKBONE, GLUE_DIR, REPO, append_json_lines, machine
from bench.hf_predict import best_precision
from bench.speed import run_contender


def run_glue_tf(args, tasks: list[str], out: Path) -> dict:
    command = [
        str(Path(sys.executable).with_name("glue-tf")), "train-all", "--glue-dir", args.glue_dir, "--backbone",
        args.backbone, "--epochs", str(args.epochs), "--tasks", ",".join(tasks), "--out", str(out),
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


def run_hf(args, tasks: list[str], precision: str) -> dict:
    """Hugging Face's trainer on each task in a fresh process; walls are whole processes."""
    from glue_tf.config import TASK_LEARNING_RATES

    theirs = {"contender": "hf-trainer", "wall_seconds": 0.0, "tasks": {}, "task_walls": {}}
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
    print(json.dumps(theirs), flush=True)
    return theirs


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
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")

    here = machine()
    print(json.dumps({"kind": "context", "machine": here, "tasks": tasks, "epochs": args.epochs}), flush=True)
    with tempfile.TemporaryDirectory() as out:
        ours = {"contender": "glue-tf", **run_glue_tf(args, tasks, Path(out))}
    print(json.dumps(ours), flush=True)
    records = [ours] + [run_hf(args, tasks, precision) for precision in _hf_precisions(args.hf_precisions)]
    append_json_lines(args.json_out, [{"kind": "end_to_end", **record, "epochs": args.epochs,
                                       "max_train_examples": args.max_train_examples} for record in records], here)
    for theirs in records[1:]:
        if "wall_seconds" in ours and theirs["wall_seconds"]:
            print(f"wall: glue-tf {ours['wall_seconds']:.0f} s, Hugging Face ({theirs['precision']}) "
                  f"{theirs['wall_seconds']:.0f} s ({theirs['wall_seconds'] / ours['wall_seconds']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
