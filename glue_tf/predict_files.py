"""``glue-tf predict`` and ``glue-tf evaluate``: an export applied to a user's file or a GLUE split.

Input files are TSV (a header row naming the task's text fields, e.g.
``sentence1<TAB>sentence2``; other columns are ignored) or JSON Lines (one object
per line with those keys). Rows stream through in chunks: each chunk is sorted by
length so batches pad little, predicted, and written back in input order. The
output goes to a temporary file renamed into place at the end, so a bad row
(named with its line number) or a kill never leaves half an output behind.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from glue_tf.data.errors import DataError
from glue_tf.errors import ExportNotFoundError
from glue_tf.exports import store
from glue_tf.precision import VARIABLE, Machine, from_environment
from glue_tf.tasks import Task, get_task

CHUNK_ROWS = 1024


def resolve_export(model: str | os.PathLike, task_name: str | None = None) -> Path:
    """A version folder from a version folder, a ``models/<task>`` folder or a run's ``--out`` folder."""
    path = Path(model)
    if (path / "saved_model.pb").is_file():
        return path
    if store.versions(path):
        return path / str(store.versions(path)[-1])
    if task_name and store.latest(path, task_name):
        return store.latest(path, task_name)
    hint = f" or a run folder with models/{task_name}/" if task_name else " (or give --task with a run folder)"
    raise ExportNotFoundError(f"--model {path}: no export there; expected a SavedModel version folder, models/<task>/{hint}")


def _format(path: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    return "jsonl" if path.suffix.lower() in (".jsonl", ".json", ".ndjson") else "tsv"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, decoded one line at a time so errors name the right line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(path, number, f"not valid UTF-8 ({error.reason})") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.rstrip("\r\n")


def read_rows(path: Path, task: Task, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """``(line number, {field: text})`` for every row of a TSV or JSONL file, checked as it goes."""
    lines = _lines(path)
    if _format(path, fmt) == "jsonl":
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(path, number, f"not valid JSON ({error.msg})") from None
            yield number, _fields(row, task, path, number)
        return
    first = next(lines, None)
    if first is None:
        raise DataError(path, 1, "empty file; the first row must name the fields " + ", ".join(task.text_features))
    header = first[1].split("\t")
    missing = [f for f in task.text_features if f not in header]
    if missing:
        raise DataError(path, 1, f"the header lacks {', '.join(missing)} (the {task.name} fields are "
                        f"{', '.join(task.text_features)}; TSV without quoting)")
    columns = {f: header.index(f) for f in task.text_features}
    for number, line in lines:
        row = line.split("\t")
        absent = [f for f, i in columns.items() if i >= len(row)]
        if absent:
            raise DataError(path, number, f"missing field {', '.join(absent)} ({len(row)} of {len(header)} columns)")
        yield number, {f: row[i] for f, i in columns.items()}


def _fields(row, task: Task, path: Path, number: int) -> dict:
    if not isinstance(row, dict):
        raise DataError(path, number, f"expected a JSON object, got {type(row).__name__}")
    missing = [f for f in task.text_features if f not in row]
    if missing:
        raise DataError(path, number, f"missing field {', '.join(missing)}")
    wrong = [f for f in task.text_features if not isinstance(row[f], str)]
    if wrong:
        raise DataError(path, number, f"field {', '.join(wrong)} is not a string")
    return {f: row[f] for f in task.text_features}


class Progress:
    """A one-line progress counter on stderr (redrawn on a terminal, every 10k rows otherwise)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.done = 0

    def update(self, rows: int) -> None:
        before, self.done = self.done, self.done + rows
        if self.tty or before // 10000 != self.done // 10000:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            line = f"predicted {self.done} rows ({rate:.0f} rows/s)"
            self.stream.write("\r" + line if self.tty else line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _output_records(task: Task, lines: list[int], outputs: dict) -> Iterator[dict]:
    for k, line in enumerate(lines):
        if task.is_regression:
            yield {"line": line, "score": float(outputs["score"][k])}
            continue
        label_id = int(outputs["label_id"][k])
        probabilities = [float(p) for p in outputs["probabilities"][k]]
        yield {"line": line, "label": task.label_names[label_id], "label_id": label_id, "probabilities": probabilities}


def _writer(handle, task: Task, fmt: str):
    if fmt == "jsonl":
        return lambda record: handle.write(json.dumps(record) + "\n")
    columns = ["line", "score"] if task.is_regression else ["line", "label", "label_id", *(f"p_{n}" for n in task.label_names)]
    handle.write("\t".join(columns) + "\n")

    def write(record):
        values = [record["line"], record["score"]] if task.is_regression else [
            record["line"], record["label"], record["label_id"], *record["probabilities"]]
        handle.write("\t".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in values) + "\n")

    return write


def predictor_for(version: Path, batch_size: int, precision: str | None):
    """The export's predictor on this machine, running the signature chosen for ``precision`` (a word of
    :mod:`glue_tf.precision`; None: ``GLUE_TF_PRECISION``)."""
    from glue_tf.exports.predictor import ExportPredictor

    machine = Machine.detect()
    if precision is None:
        return ExportPredictor(version, machine, batch_size, from_environment(),
                               setting=VARIABLE)
    return ExportPredictor(version, machine, batch_size, precision)


def predict_file(model, input_path, output_path, batch_size: int = 64, input_format=None, output_format=None,
                 progress: Progress | None = None, precision: str | None = None) -> dict:
    """Predicts every row of ``input_path`` with the export at ``model``; returns a summary.

    ``precision``: a word of :mod:`glue_tf.precision` (``auto``, ``float32``, ``bfloat16``; see
    :mod:`glue_tf.exports.choice`); None reads ``GLUE_TF_PRECISION``.
    """
    version = resolve_export(model)
    predictor = predictor_for(version, batch_size, precision)
    task = get_task(predictor.metadata["task"])
    input_path, output_path = Path(input_path), Path(output_path)
    out_format = _format(output_path, output_format)
    progress = progress or Progress()
    tmp = output_path.with_name(f".{output_path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            write = _writer(handle, task, out_format)
            rows = read_rows(input_path, task, input_format)
            while True:
                chunk = [row for _, row in zip(range(CHUNK_ROWS), rows)]
                if not chunk:
                    break
                outputs = predictor.raw_outputs(task, [r for _, r in chunk])
                for record in _output_records(task, [n for n, _ in chunk], outputs):
                    write(record)
                count += len(chunk)
                progress.update(len(chunk))
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
        progress.close()
    return {"task": task.name, "export": str(version), "rows": count, "output": str(output_path),
            "signature": predictor.signature_name, "signature_reason": predictor.reason}


def evaluate_export(model, task_name: str | None, source, split: str | None, batch_size: int = 64,
                    precision: str | None = None) -> dict:
    """Official metrics (points) of an export on a labelled split of any data source (``precision``: as
    for :func:`predict_file`)."""
    from glue_tf.exports.predictor import score_export

    version = resolve_export(model, task_name)
    predictor = predictor_for(version, batch_size, precision)
    task = get_task(task_name or predictor.metadata["task"])
    split = split or task.score_components[0][1]  # the first dev split (AX: its test split)
    scored = score_export(predictor, task, source, [split])
    examples, seconds = scored["examples"][split], scored["seconds"]
    result = {"task": task.name, "split": split, "export": str(version), "signature": predictor.signature_name,
              "signature_reason": predictor.reason, "examples": examples, "metrics": scored["metrics"][split], "examples_per_second": round(examples / seconds, 1) if seconds else None}
    if scored["score"] is not None:
        result["score"] = scored["score"]
    return result
