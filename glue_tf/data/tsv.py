"""Reader for GLUE in the classic ``download_glue_data.py`` TSV layout.

Reads each task the way tfds' ``glue`` builder does (same fields, label ids and
``idx``), so the TSV folder and tfds are interchangeable sources: CoLA's
headerless train/dev, MRPC's BOM and column names, STS-B's float scores,
test splits labelled -1, MNLI's matched/mismatched files and AX's
``diagnostic/diagnostic.tsv``. Quoting is off, since GLUE text has bare quotes.

Unlike tfds, which silently skips rows with missing columns, every malformed
row raises a ``DataError`` naming the file and line, and the number of examples
is checked against the number of rows.
"""

from __future__ import annotations

import os
from pathlib import Path

from glue_tf.data.errors import DataError, MissingDataError
from glue_tf.tasks import Task

_BOM = "\ufeff"


def split_path(glue_dir: str | os.PathLike, task: Task, split: str) -> Path:
    """Where the TSV layout keeps ``task``'s ``split``."""
    if split not in task.splits:
        raise MissingDataError(
            f"{task.name} has no split {split!r}; its splits are {', '.join(task.splits)}"
        )
    return Path(glue_dir) / task.tsv_dir / task.splits[split]


def available_splits(glue_dir: str | os.PathLike, task: Task) -> list[str]:
    return [split for split in task.splits if split_path(glue_dir, task, split).is_file()]


def _lines(path: Path) -> list[str]:
    """The file's rows, with line endings and a leading BOM removed.

    A final newline is optional (CoLA's dev.tsv has none); an empty line
    elsewhere is a malformed row, not something to skip.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(path, line, f"not valid UTF-8 ({error.reason})") from None
    if text.startswith(_BOM):
        text = text[1:]
    # Universal newlines, as tfds' text-mode reader sees the file.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _column_index(header: list[str] | None, task: Task, column: str, path: Path) -> int:
    if header is None:
        return task.headerless_columns[column]
    if column not in header:
        raise DataError(path, 1, f"header has no column {column!r} (header: {header})")
    return header.index(column)


def _parse_label(task: Task, value: str, path: Path, line: int):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise DataError(path, line, f"score {value!r} is not a number") from None
    if value in task.label_names:
        return task.label_names.index(value)
    try:
        label = int(value)
    except ValueError:
        label = -2
    if not 0 <= label < len(task.label_names):
        raise DataError(
            path,
            line,
            f"label {value!r} is not one of {list(task.label_names)} "
            f"or an id in 0..{len(task.label_names) - 1}",
        )
    return label


def read_split(glue_dir: str | os.PathLike, task: Task, split: str) -> list[dict]:
    """All examples of one split as tfds-shaped dicts: ``idx``, ``label``, text fields.

    Raises ``MissingDataError`` if the file is not there and ``DataError`` for
    any malformed row.
    """
    path = split_path(glue_dir, task, split)
    if not path.is_file():
        raise MissingDataError(
            f"{task.display_name} {split}: expected {path} (GLUE TSV layout: "
            f"<glue_dir>/{task.tsv_dir}/{task.splits[split]}); get it with GLUE's "
            f"download_glue_data.py, or use tfds glue/{task.tfds_config}"
        )
    return _read_rows(path, task, split)


def _read_rows(path: Path, task: Task, split: str) -> list[dict]:
    lines = _lines(path)
    labelled = not split.startswith("test")
    has_header = not (labelled and task.headerless_columns)
    header = lines[0].split("\t") if has_header and lines else None
    first_row = 2 if has_header else 1
    if has_header and not lines:
        raise DataError(path, 1, "empty file: expected a header row")
    text_columns = [_column_index(header, task, c, path) for c in task.tsv_columns]
    # Test splits carry no labels (the leaderboard keeps them): label -1, as in tfds.
    label_column = _column_index(header, task, task.label_column, path) if labelled else None
    width = len(header) if header else None
    min_width = max(text_columns + ([label_column] if label_column is not None else [])) + 1

    examples = []
    for offset, line in enumerate(lines[first_row - 1 :]):
        line_no = first_row + offset
        fields = line.split("\t")
        if width is not None and len(fields) != width:
            raise DataError(path, line_no, f"expected {width} tab-separated columns, found {len(fields)}")
        if len(fields) < min_width:
            raise DataError(path, line_no, f"expected at least {min_width} tab-separated columns, found {len(fields)}")
        example = {"idx": len(examples)}
        example["label"] = (
            _parse_label(task, fields[label_column], path, line_no)
            if label_column is not None
            else (-1.0 if task.is_regression else -1)
        )
        for feature, column in zip(task.text_features, text_columns):
            example[feature] = fields[column]
        examples.append(example)
    expected = len(lines) - (first_row - 1)
    if len(examples) != expected:  # pragma: no cover - guards the loop above
        raise DataError(path, None, f"read {len(examples)} examples from {expected} rows")
    return examples

