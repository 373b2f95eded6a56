"""``glue-tf evaluate`` against Hugging Face on the same dev rows, as whole processes.

What a user waits for to score an export: each contender is one process, start-up
(imports, loading the model, any compiling) included, over the task's first dev split:

- ``glue-tf``: ``glue-tf evaluate --precision auto`` on the newest export of the task
  under ``--model-dir``, reading the GLUE TSV folder itself and scoring with the
  official metrics;
- ``hf``: ``bench.hf_predict`` over the same rows written as a TSV (the task's text
  fields as its header), Hugging Face's dynamic padding in batches of 64 at its best
  precision here (a fresh head: speed is compared, not answers).

The contenders run in ``--rounds`` alternating rounds (:func:`bench.common.alternating_rounds`),
task after task. One JSON line per run (``kind: evaluate``) and one per task
(``kind: evaluate-ratio``): Hugging Face's median wall over glue-tf's, against the target.

    python -m bench.evaluate_speed --model-dir runs/seeds42 --glue-dir ../shared/glue_data --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.common import (BACKBONE, GLUE_DIR, alternating_rounds, append_json_lines, median_ratios, median_wall,
                          module_command)
from bench.predict_speed import BASELINE, process_figures

OURS = "glue-tf"
TARGET = 1.8  # issue 27: `evaluate` at 1.8x Hugging Face or more on CoLA, MRPC and RTE


def dev_split(task) -> str:
    """The split ``glue-tf evaluate`` scores by default: the task's first dev split."""
    return task.dev_splits[0]


def write_dev_input(glue_dir: str, task, path: Path) -> int:
    """The task's dev split as a TSV with its text fields as header (tabs and newlines made spaces);
    returns the row count."""
    from glue_tf.data.sources import TsvSource

    examples = TsvSource(glue_dir).examples(task, dev_split(task))
    lines = ["\t".join(_one_line(e[field]) for field in task.text_features) + "\n" for e in examples]
    path.write_text("\t".join(task.text_features) + "\n" + "".join(lines), encoding="utf-8")
    return len(examples)


def _one_line(text: str) -> str:
    """A text as one TSV cell: the reader splits on tabs and newlines."""
    return text.replace("\t", " ").replace("\n", " ")


def contenders(version: Path, task, glue_dir: str, backbone: str, data: Path, work: Path) -> dict[str, list[str]]:
    glue_tf = str(Path(sys.executable).with_name("glue-tf"))
    return {
        OURS: [glue_tf, "evaluate", "--model", str(version), "--task", task.name, "--split", dev_split(task),
               "--glue-dir", glue_dir, "--precision", "auto"],
        BASELINE: module_command("hf_predict", "--backbone", backbone, "--input", str(data), "--output",
                                 str(work / f"hf-{task.name}.tsv"), "--fields", ",".join(task.text_features)),
    }


def time_task(task, version: Path, args, work: Path) -> list[dict]:
    """The task's runs in alternating rounds, each printed as it ends, and its ratio record last."""
    data = work / f"{task.name}-dev.tsv"
    rows = write_dev_input(args.glue_dir, task, data)
    commands = contenders(version, task, args.glue_dir, args.backbone, data, work)

    head = {"kind": "evaluate", "task": task.name, "split": dev_split(task), "rows": rows}
    found = alternating_rounds({name: (lambda name=name: process_figures(name, commands[name], rows, args.timeout))
                                for name in commands}, args.rounds,
                               on_record=lambda name, record: print(json.dumps({**head, "contender": name, **record}),
                                                                    flush=True))
    records = [{**head, "contender": name, "export": str(version), **record}
               for name, runs_of in found.items() for record in runs_of]
    ratios = median_ratios(found, BASELINE)
    summary = {"kind": "evaluate-ratio", "task": task.name, "rows": rows, "rounds": args.rounds,
               "median_wall_seconds": {name: median_wall(runs_of) for name, runs_of in found.items()},
               "vs_hf": ratios, "target": TARGET, "met": ratios.get(OURS, 0) >= TARGET}
    print(json.dumps(summary), flush=True)
    return records + [summary]


def main(argv=None) -> int:
    from glue_tf.exports import store
    from glue_tf.tasks import get_task

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder holding the tasks' exports")
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--tasks", default="cola,mrpc,rte")
    parser.add_argument("--backbone", default=BACKBONE,
                        help="the Hugging Face checkpoint folder the exports were fine-tuned from")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; ratios of the median walls")
    parser.add_argument("--json-out", default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)

    tasks = [get_task(name) for name in args.tasks.split(",")]
    versions = {task.name: store.latest(args.model_dir, task.name) for task in tasks}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        parser.error(f"no export of {', '.join(missing)} under {args.model_dir}/models")
    records = []
    with tempfile.TemporaryDirectory(prefix="evaluate-speed-") as tmp:
        for task in tasks:
            records += time_task(task, versions[task.name].resolve(), args, Path(tmp))
    append_json_lines(args.json_out, records)
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
