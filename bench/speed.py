"""Fine-tuning and inference speed of glue-tf beside KerasHub's recipe and Hugging Face.

    python -m bench.speed train --glue-dir ../shared/glue_data --tasks cola,mrpc,rte
    python -m bench.speed infer --glue-dir ../shared/glue_data --tasks cola,mrpc,rte [--model-dir runs/x]

Each contender (see ``bench.contenders``) runs in a subprocess of its own,
one after the other, on the same data, checkpoint, batch size, maximum length,
learning rate and step count. One JSON line per measurement goes to stdout
(and to ``--json-out``), then a table of ratios to Hugging Face with dynamic
padding, the stronger of its two modes, at its best precision on this CPU. Inference
includes ``glue-tf-chosen``: the signature ``glue-tf evaluate`` chooses, on the
exports under ``--model-dir``. Needs the ``[bench]`` extra.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (BACKBONE, GLUE_DIR, INFERENCE_BATCH, REPO, TRAIN_BATCH, append_json_lines, child_or_parent,
                          machine, module_command)

BASELINE = "hf-dynamic"
MARK = "BENCH-RESULT "


def _child(argv: list[str]) -> None:
    """In the child process: one contender's figures, marked for the parent (``kind contender params-json``)."""
    kind, contender, params = argv[0], argv[1], json.loads(argv[2])
    if contender.startswith("glue-tf"):  # as the glue-tf CLI runs; the other contenders keep TensorFlow's default
        from glue_tf import tf_startup

        print("; ".join(tf_startup.prepare()), file=sys.stderr)
    from bench import contenders

    table = {"train": {**contenders.TRAINING, **contenders.OPTIONAL_TRAINING}, "infer": contenders.INFERENCE,
             "finetune": contenders.FINETUNE}[kind]
    function, extra = table[contender]
    accepted = inspect.signature(function).parameters
    params = {k: v for k, v in params.items() if k in accepted}  # --model-dir: only the contenders that read it
    print(MARK + json.dumps(function(**params, **extra)), flush=True)


def run_contender(kind: str, contender: str, params: dict, timeout: float) -> dict:
    """Runs one measurement in a fresh interpreter; returns its figures or the error."""
    command = module_command("speed", "--child", kind, contender, json.dumps(params))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def ratio_table(records: list[dict]) -> str:
    lines = ["| kind | task | contender | examples/s | real tokens/s | padding efficiency | vs. hf-dynamic |",
             "|---|---|---|---|---|---|---|"]
    base = {(r["kind"], r["task"]): r for r in records if r["contender"] == BASELINE and "error" not in r}
    for r in records:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['task']} | {r['contender']} | error: {r['error'][:80]} | | | |")
            continue
        ref = base.get((r["kind"], r["task"]))
        ratio = f"{r['examples_per_second'] / ref['examples_per_second']:.2f}x" if ref else "–"
        lines.append(
            f"| {r['kind']} | {r['task']} | {r['contender']} | {r['examples_per_second']:.1f} | "
            f"{r['real_tokens_per_second']:.0f} | {100 * r['padding_efficiency']:.1f}% | {ratio} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    return child_or_parent(argv, _child, _compare)


def _compare(argv: list[str]) -> int:
    """In the parent: each contender on each task in a child process, as JSON lines, then the ratio table."""
    from bench import contenders

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["train", "infer"])
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--tasks", default="cola,mrpc,rte")
    parser.add_argument("--contenders", default=None, help="comma list; default: all of the kind")
    parser.add_argument("--steps", type=int, default=15, help="timed optimizer steps (train)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (train)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per contender")
    parser.add_argument("--json-out", default=None, help="append the JSON lines to this file")
    parser.add_argument("--model-dir", default=None,
                        help="infer: a training run's --out folder whose exports glue-tf-chosen and "
                             "glue-tf-serving-default time (else they write a measured export of the backbone)")
    args = parser.parse_args(argv)

    table = contenders.TRAINING if args.kind == "train" else contenders.INFERENCE
    names = args.contenders.split(",") if args.contenders else list(table)
    known = {**table, **(contenders.OPTIONAL_TRAINING if args.kind == "train" else {})}
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown contenders {unknown}; known: {', '.join(known)}")
    context = {"machine": machine(), "backbone": args.backbone,
               "batch_size": TRAIN_BATCH if args.kind == "train" else INFERENCE_BATCH, "max_length": args.max_length}
    print(json.dumps({"kind": "context", **context}), flush=True)
    records = []
    for task in args.tasks.split(","):
        for name in names:
            params = {"glue_dir": args.glue_dir, "task_name": task, "backbone": args.backbone, "max_length": args.max_length}
            if args.kind == "train":
                params.update(steps=args.steps, warmup=args.warmup, learning_rate=args.learning_rate)
            elif args.model_dir:
                params.update(model_dir=str(Path(args.model_dir).resolve()))
            started = time.perf_counter()
            figures = run_contender(args.kind, name, params, args.timeout)
            record = {"kind": args.kind, "task": task, "contender": name, **figures,
                      "process_seconds": round(time.perf_counter() - started, 1)}
            if args.kind == "train":
                record.update(steps=args.steps, warmup=args.warmup)
            records.append(record)
            print(json.dumps(record), flush=True)
            append_json_lines(args.json_out, [record], context["machine"])
    print()
    print(ratio_table(records))
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
