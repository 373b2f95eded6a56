"""Where one ``glue-tf evaluate`` process spends its time, phase by phase, in a fresh process per task.

``bench/evaluate_speed.py`` times whole processes against Hugging Face; on the small dev sets
(277 to 1,043 rows) both take seconds, so start-up decides the ratio. This script splits ours
into what ``evaluate`` does in order, with glue-tf's start-up switches (oneDNN, XLA cache) set
first, as the command sets them:

- ``import_tensorflow``: ``import tensorflow``, which loads Keras, and Keras' scikit-learn
  wrapper where scikit-learn is installed (the test extra; ``glue-tf[train]`` lacks it);
- ``load``: ``tf.saved_model.load`` of the export and its metadata;
- ``tokenize``: every dev row through the export's ``tokenize``, once;
- ``first_pass`` and ``second_pass``: every row through ``from_tokens_float32`` in length-sorted
  calls of 64 rows (:func:`glue_tf.exports.predictor.run_tokenized`); the first pays the
  function's instantiation and oneDNN's primitives for each new shape, the second is the
  steady rate.

One JSON line per task (``kind: evaluate-phases``), with the modules loaded, the machine, and
``pass_gflop``: the matrix-product FLOPs of one pass as its calls are padded
(:func:`bench.roofline.matmul_flops` per call), to set against ``bench/roofline.py``'s rate.

    python -m bench.evaluate_phases --model-dir runs/seeds42 --tasks mrpc,rte
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.common import GLUE_DIR, INFERENCE_BATCH, append_json_lines, child_or_parent, child_rows, machine

MARK = "evaluate-phases:"
CALL_ROWS = INFERENCE_BATCH  # as glue-tf evaluate's default --batch-size


def measure(version: str, task_name: str, glue_dir: str) -> dict:
    """The phases of one evaluation, in this (fresh) process."""
    started = time.perf_counter()
    from glue_tf import tf_startup

    tf_startup.prepare()
    import tensorflow as tf

    phases = {"import_tensorflow": time.perf_counter() - started}
    from glue_tf.data.sources import TsvSource
    from glue_tf.exports import saved_model, signatures
    from glue_tf.exports.predictor import run_tokenized
    from glue_tf.tasks import TASKS

    task = TASKS[task_name]
    examples = TsvSource(glue_dir).examples(task, task.dev_splits[0])
    columns = {field: [e[field] for e in examples] for field in task.text_features}
    step = time.perf_counter()
    loaded, _ = saved_model.load_signatures(version)
    tokenize, run = saved_model.from_tokens(loaded, "serving_default")
    phases["load"] = time.perf_counter() - step
    step = time.perf_counter()
    packed = tokenize(*(tf.constant(texts) for texts in columns.values()))
    phases["tokenize"] = time.perf_counter() - step
    for name in ("first_pass", "second_pass"):
        step = time.perf_counter()
        run_tokenized(tokenize, run, columns, CALL_ROWS)
        phases[name] = time.perf_counter() - step
    loaded_modules = {name: name in sys.modules for name in ("keras", "sklearn", "keras_hub", "matplotlib")}
    counts = packed[signatures.TOKEN_COUNT].numpy()
    return {"kind": "evaluate-phases", "task": task_name, "rows": len(examples), "export": version,
            "tokens": int(counts.sum()), "pass_gflop": round(pass_flops(counts, CALL_ROWS, task.num_outputs) / 1e9, 1),
            "seconds": {k: round(v, 2) for k, v in phases.items()}, "loaded": loaded_modules}


def pass_flops(counts, rows: int, labels: int) -> int:
    """Matrix-product FLOPs of one forward pass over rows with these token counts, sorted and cut into
    calls of ``rows``, each padded to its longest row (as :func:`glue_tf.exports.predictor.run_tokenized`)."""
    import numpy as np

    from bench.roofline import bert_config, matmul_flops

    config, ordered = bert_config(), np.sort(counts)
    return sum(matmul_flops(config, int(ordered[start : start + rows].max()), len(ordered[start : start + rows]),
                            train=False, labels=labels) for start in range(0, len(ordered), rows))


def child(argv: list[str]) -> int:
    version, task_name, glue_dir = argv
    print(MARK + json.dumps(measure(version, task_name, glue_dir)), flush=True)
    return 0


def parent(argv: list[str] | None) -> int:
    from glue_tf.exports import store
    from glue_tf.tasks import get_task

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder holding the tasks' exports")
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--tasks", default="cola,mrpc,rte")
    parser.add_argument("--json-out", default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    here = machine()
    records = []
    for name in args.tasks.split(","):
        version = store.latest(args.model_dir, get_task(name).predicted_by)
        if version is None:
            parser.error(f"no {name} export under {args.model_dir}")
        for row in child_rows("evaluate_phases", MARK, [str(version), name, args.glue_dir], None, f"{name} phases"):
            row["machine"] = here
            print(json.dumps(row), flush=True)
            records.append(row)
    if args.json_out:
        append_json_lines(args.json_out, records)
    return 0


if __name__ == "__main__":
    sys.exit(child_or_parent(None, child, parent))
