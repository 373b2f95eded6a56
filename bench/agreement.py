"""Do an export's faster signatures answer as ``serving_default`` does? Full dev splits, every task.

For each task's newest export under a training run's folder, runs every dev
split (read from a GLUE TSV folder by glue-tf's own data source) through the
signatures with ``glue-tf evaluate``'s batching loop, and compares:

- ``serving_compiled`` against ``serving_default``: label ids identical,
  probabilities within 1e-4, STS-B scores within 1e-3 (``--tolerances``);
- ``serving_bfloat16``'s dev score (points) against float32's: at most
  ``BF16_TOLERANCE`` (0.3) points lower, the rule ``glue_tf.exports.choice``
  applies before it ever chooses bf16.

One JSON line per task (and split), then a table; exit status 1 when a
threshold is missed. bf16 on a CPU without bf16 units runs emulated and is
slow (minutes over six tasks on 2 cores); ``--skip-bfloat16`` leaves it out.

    python -m bench.agreement --model-dir runs/bench/exports --glue-dir ../shared/glue_data
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import GLUE_DIR, append_json_lines

PROBABILITY_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-3
CALL_BATCH = 64


def run_signature(signature, name: str, task, examples: list[dict]) -> tuple[dict, float]:
    """Every output of one signature over ``examples`` (in their order) and its seconds, as evaluate batches."""
    import tensorflow as tf

    from glue_tf.exports.predictor import rows_per_call, run_length_sorted

    def call(columns):
        return {k: v.numpy() for k, v in signature(**{f: tf.constant(t) for f, t in columns.items()}).items()}

    columns = {field: [e[field] for e in examples] for field in task.text_features}
    started = time.perf_counter()
    outputs = run_length_sorted(call, columns, rows_per_call(name, CALL_BATCH))
    return outputs, time.perf_counter() - started


def compare(task, reference: dict, candidate: dict) -> dict:
    """How far ``candidate``'s outputs are from ``reference``'s, and whether within the tolerances."""
    if task.is_regression:
        diff = float(np.max(np.abs(reference["score"] - candidate["score"]), initial=0.0))
        return {"max_score_diff": diff, "passed": diff <= SCORE_TOLERANCE}
    agree = float(np.mean(reference["label_id"] == candidate["label_id"])) if len(reference["label_id"]) else 1.0
    diff = float(np.max(np.abs(reference["probabilities"] - candidate["probabilities"]), initial=0.0))
    return {"label_agreement": agree, "max_probability_diff": diff,
            "passed": agree == 1.0 and diff <= PROBABILITY_TOLERANCE}


def task_score(task, per_split_outputs: dict, labels: dict) -> float:
    """The task's dev score in points from each split's outputs."""
    from glue_tf import metrics

    per_split = {split: metrics.compute_metrics(task, labels[split], metrics.predictions_from_outputs(task, outputs))
                 for split, outputs in per_split_outputs.items()}
    return metrics.task_score(task, metrics.score_components(task, per_split))


def check_task(version: Path, task, source, bfloat16: bool) -> list[dict]:
    """The records of one export: one per dev split (compiled vs default), one for the bf16 dev score."""
    from glue_tf.exports import saved_model, signatures
    from glue_tf.exports.choice import BF16_TOLERANCE

    loaded, _ = saved_model.load_signatures(version)
    records, outputs, labels = [], {}, {}
    for split in task.dev_splits:
        examples = source.examples(task, split)
        labels[split] = np.array([e["label"] for e in examples])
        outputs[split] = {}
        seconds = {}
        for name in (signatures.DEFAULT, signatures.COMPILED, signatures.BFLOAT16):
            if name in loaded and (bfloat16 or name != signatures.BFLOAT16):
                outputs[split][name], seconds[name] = run_signature(loaded[name], name, task, examples)
        record = {"kind": "agreement", "task": task.name, "split": split, "examples": len(examples),
                  "export": str(version), "seconds": {k: round(v, 2) for k, v in seconds.items()}}
        if signatures.COMPILED in outputs[split]:
            record.update(compare(task, outputs[split][signatures.DEFAULT], outputs[split][signatures.COMPILED]))
        else:
            record.update(passed=False, missing=signatures.COMPILED)
        records.append(record)
    if bfloat16:
        record = {"kind": "bfloat16-score", "task": task.name, "export": str(version)}
        if all(signatures.BFLOAT16 in by_name for by_name in outputs.values()):
            float32 = task_score(task, {s: o[signatures.DEFAULT] for s, o in outputs.items()}, labels)
            bf16 = task_score(task, {s: o[signatures.BFLOAT16] for s, o in outputs.items()}, labels)
            record.update(float32_score=round(float32, 3), bfloat16_score=round(bf16, 3),
                          diff_points=round(bf16 - float32, 3), passed=bf16 >= float32 - BF16_TOLERANCE)
        else:
            record.update(passed=False, missing=signatures.BFLOAT16)
        records.append(record)
    return records


def table(records: list[dict]) -> str:
    lines = ["| task | split | examples | labels identical | max \\|prob diff\\| | max STS-B diff | passed |",
             "|---|---|---|---|---|---|---|"]
    for r in (r for r in records if r["kind"] == "agreement"):
        labels = "–" if "label_agreement" not in r else ("yes" if r["label_agreement"] == 1.0
                                                         else f"no ({100 * r['label_agreement']:.2f}%)")
        prob = f"{r['max_probability_diff']:.1e}" if "max_probability_diff" in r else "–"
        score = f"{r['max_score_diff']:.1e}" if "max_score_diff" in r else "–"
        lines.append(f"| {r['task']} | {r['split']} | {r['examples']} | {labels} | {prob} | {score} | "
                     f"{'yes' if r['passed'] else 'NO'} |")
    bf16 = [r for r in records if r["kind"] == "bfloat16-score"]
    if bf16:
        lines += ["", "| task | float32 dev score | bfloat16 dev score | difference (points) | within 0.3 |",
                  "|---|---|---|---|---|"]
        for r in bf16:
            if "missing" in r:
                lines.append(f"| {r['task']} | – | – | – | NO (no {r['missing']}) |")
                continue
            lines.append(f"| {r['task']} | {r['float32_score']:.2f} | {r['bfloat16_score']:.2f} | "
                         f"{r['diff_points']:+.2f} | {'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from glue_tf.exports import store
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS, get_task

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder (its models/<task>/)")
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--tasks", default=None, help="comma list (default: every task exported there)")
    parser.add_argument("--skip-bfloat16", action="store_true", help="compare only the float32 signatures")
    parser.add_argument("--json-out", default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)

    names = args.tasks.split(",") if args.tasks else [n for n in TASKS if store.latest(args.model_dir, n)]
    if not names:
        parser.error(f"no exports under {args.model_dir}/models/")
    source = TsvSource(args.glue_dir)
    records = []
    for name in names:
        task = get_task(name)
        version = store.latest(args.model_dir, task.name)
        if version is None:
            parser.error(f"no {task.name} export under {args.model_dir}/models/{task.name}")
        for record in check_task(version, task, source, not args.skip_bfloat16):
            records.append(record)
            print(json.dumps(record), flush=True)
    summary = {"kind": "agreement-verdict", "tasks": names, "passed": all(r["passed"] for r in records),
               "tolerances": {"probabilities": PROBABILITY_TOLERANCE, "sts_b_score": SCORE_TOLERANCE}}
    records.append(summary)
    print(json.dumps(summary), flush=True)
    print(table(records))
    append_json_lines(args.json_out, records)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
