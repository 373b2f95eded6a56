"""``glue-tf predict`` against Hugging Face over 20,000 SST-2 sentences, as whole processes.

What a user waits for: each contender is one process, start-up (imports,
loading the model, any compiling) included, reading the same TSV of the first
``--rows`` sentences of SST-2's training file (read by glue-tf's TSV source,
in file order) and writing its predictions to a file:

- ``glue-tf-auto``: ``glue-tf predict --precision auto``, the signature chosen
  where the model runs (``glue_tf.exports.choice``);
- ``glue-tf-default``: the same export's ``serving_default``, the portable
  path: ``glue-tf predict`` over a copy of the export whose ``metadata.json``
  records no measured signatures, which the choice rule answers with
  ``serving_default`` (links to the same SavedModel files, nothing retrained);
- ``hf``: ``bench.hf_predict``, Hugging Face's dynamic padding in batches of
  64 in file order under ``torch.inference_mode`` at its best precision here.

The contenders run in ``--rounds`` alternating rounds (:func:`bench.common.alternating_rounds`).
One JSON line per run (wall seconds, rows/s, the signature that ran, the round) and
one line of ratios: Hugging Face's median wall over each glue-tf median wall (the
target: ``glue-tf-auto`` at 2.2x or more, at Hugging Face's best precision here).

    python -m bench.predict_speed --model-dir runs/bench/exports --glue-dir ../shared/glue_data --rounds 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (BACKBONE, GLUE_DIR, REPO, alternating_rounds, append_json_lines, median_ratios,
                          median_wall, module_command)

BASELINE = "hf"
TARGET = 2.2


def write_input(glue_dir: str, rows: int, path: Path) -> int:
    """The first ``rows`` SST-2 training sentences as a TSV with header ``sentence``; returns the count."""
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import get_task

    sentences = [e["sentence"] for e in TsvSource(glue_dir).examples(get_task("sst2"), "train")[:rows]]
    path.write_text("sentence\n" + "".join(s.replace("\t", " ").replace("\n", " ") + "\n" for s in sentences),
                    encoding="utf-8")
    return len(sentences)


def default_only_copy(version: Path, folder: Path) -> Path:
    """A view of the export that the choice rule serves with ``serving_default``.

    Every file but ``metadata.json`` is a link to the original; the metadata
    loses its ``signatures`` record, as an export written before signatures
    were measured, for which ``choose`` answers ``serving_default``.
    """
    copy = folder / "models" / version.parent.name / version.name
    copy.mkdir(parents=True)
    for entry in version.iterdir():
        if entry.name != "metadata.json":
            (copy / entry.name).symlink_to(entry.resolve())
    metadata = json.loads((version / "metadata.json").read_text(encoding="utf-8"))
    metadata.pop("signatures", None)
    (copy / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return copy


def timed_process(command: list[str], timeout: float) -> dict:
    """Runs ``command`` to the end; its wall seconds, exit status and last stderr line."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    wall = time.perf_counter() - started
    tail = (done.stderr or "").strip().splitlines()[-3:]
    if done.returncode:
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return {"wall_seconds": round(wall, 2), "log": tail[-1][-300:] if tail else ""}


def signature_of(log: str) -> str | None:
    """The signature a ``glue-tf predict`` or ``evaluate`` summary line names first: its reason starts
    ``<name>: why`` (``... (serving_compiled: why) -> out``), and may name others after."""
    from glue_tf.exports import signatures

    found = [(log.find(f"{name}:"), name) for name in signatures.NAMES if f"{name}:" in log]
    return min(found)[1] if found else None


def label_agreement(a: Path, b: Path) -> float | None:
    """Share of rows whose ``label_id`` column is equal in two prediction TSVs (None if unreadable)."""
    def labels(path):
        lines = path.read_text(encoding="utf-8").splitlines()
        column = lines[0].split("\t").index("label_id")
        return [line.split("\t")[column] for line in lines[1:]]

    try:
        first, second = labels(a), labels(b)
    except (OSError, ValueError):
        return None
    return sum(x == y for x, y in zip(first, second)) / max(len(first), 1) if len(first) == len(second) else None


def contenders(version: Path, backbone: str, data: Path, work: Path) -> dict[str, list[str]]:
    glue_tf = str(Path(sys.executable).with_name("glue-tf"))
    default_view = default_only_copy(version, work / "default-view")
    return {
        "glue-tf-auto": [glue_tf, "predict", "--model", str(version), "--input", str(data),
                         "--output", str(work / "glue-tf-auto.tsv"), "--precision", "auto"],
        "glue-tf-default": [glue_tf, "predict", "--model", str(default_view), "--input", str(data),
                            "--output", str(work / "glue-tf-default.tsv"), "--precision", "auto"],
        "hf": module_command("hf_predict", "--backbone", backbone, "--input", str(data),
                             "--output", str(work / "hf.tsv")),
    }


def main(argv=None) -> int:
    from glue_tf.exports import store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder holding an SST-2 export")
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--backbone", default=BACKBONE,
                        help="the Hugging Face checkpoint folder the export was fine-tuned from")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; ratios of the median walls")
    parser.add_argument("--json-out", default=None, help="append the JSON lines to this file")
    args = parser.parse_args(argv)

    version = store.latest(args.model_dir, "sst2")
    if version is None:
        parser.error(f"no SST-2 export under {args.model_dir}/models/sst2")
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as tmp:
        work = Path(tmp)
        rows = write_input(args.glue_dir, args.rows, work / "sentences.tsv")
        commands = contenders(version.resolve(), args.backbone, work / "sentences.tsv", work)
        runs = {name: lambda command=command, name=name: process_figures(name, command, rows, args.timeout)
                for name, command in commands.items()}
        found = alternating_rounds(runs, args.rounds, on_record=lambda name, record: print(json.dumps(
            {"kind": "predict", "task": "sst2", "contender": name, "rows": rows, **record}), flush=True))
        agreement = label_agreement(work / "glue-tf-auto.tsv", work / "glue-tf-default.tsv")
    records = [{"kind": "predict", "task": "sst2", "contender": name, "rows": rows, "export": str(version), **record}
               for name, runs_of in found.items() for record in runs_of]
    ratios = median_ratios(found, BASELINE)
    summary = {"kind": "predict-ratio", "task": "sst2", "rows": rows, "rounds": args.rounds,
               "median_wall_seconds": {name: median_wall(runs_of) for name, runs_of in found.items()},
               "vs_hf": ratios, "target": TARGET, "met": ratios.get("glue-tf-auto", 0) >= TARGET,
               "auto_vs_default_label_agreement": agreement}
    records.append(summary)
    print(json.dumps(summary), flush=True)
    append_json_lines(args.json_out, records)
    return 1 if any("error" in r for r in records) else 0


def process_figures(name: str, command: list[str], rows: int, timeout: float) -> dict:
    """One whole-process run: its wall seconds, rows/s, and the signature (glue-tf) or precision (Hugging Face)."""
    figures = timed_process(command, timeout)
    if "wall_seconds" in figures:
        figures["rows_per_second"] = round(rows / figures["wall_seconds"], 1)
        if name == BASELINE:
            figures["precision"] = figures["log"].split(":", 1)[-1].split("(")[0].strip()
        else:
            figures["signature"] = signature_of(figures["log"])
    return figures


if __name__ == "__main__":
    sys.exit(main())
