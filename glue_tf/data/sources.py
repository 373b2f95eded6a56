"""One interface over the three places GLUE comes from.

``TsvSource`` (a GLUE TSV folder) and ``TfdsSource`` (tfds by name, online or
from a manual dir of official archives) both give a ``tf.data.Dataset`` of
tfds-shaped dicts: ``idx`` (int32), ``label`` (int64 class id, or float32 for
STS-B; -1 on test splits) and the task's text fields (string). Everything
downstream reads a ``Source`` and never cares which one it is.
"""

from __future__ import annotations

import abc
import os
from collections import Counter

from glue_tf.data import tsv
from glue_tf.data.errors import MissingDataError
from glue_tf.tasks import Task


class Source(abc.ABC):
    """Where GLUE examples come from."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Human-readable origin, for logs, reports and metadata."""

    @abc.abstractmethod
    def available_splits(self, task: Task) -> list[str]:
        """Splits of ``task`` this source can give without failing."""

    @abc.abstractmethod
    def load(self, task: Task, split: str):
        """The split as a ``tf.data.Dataset`` of tfds-shaped dicts."""

    @abc.abstractmethod
    def examples(self, task: Task, split: str) -> list[dict]:
        """The split as Python dicts (text as ``str``), sorted by ``idx``."""

    @abc.abstractmethod
    def locate(self, task: Task, split: str) -> str:
        """Where this source looks for ``task``'s ``split`` (for messages)."""

    @abc.abstractmethod
    def missing_reason(self, task: Task) -> str:
        """Why ``task`` has no splits here and how to get them (empty if it has some); without the
        task's name, which every caller shows beside it."""


def _tensor_columns(task: Task, examples: list[dict]) -> dict:
    import numpy as np

    columns = {
        "idx": np.asarray([e["idx"] for e in examples], dtype=np.int32),
        "label": np.asarray(
            [e["label"] for e in examples], dtype=np.float32 if task.is_regression else np.int64
        ),
    }
    for feature in task.text_features:
        columns[feature] = np.asarray([e[feature] for e in examples], dtype=object)
    return columns


class TsvSource(Source):
    """A folder in the classic ``download_glue_data.py`` layout."""

    def __init__(self, glue_dir: str | os.PathLike):
        self.glue_dir = os.fspath(glue_dir)
        if not os.path.isdir(self.glue_dir):
            raise MissingDataError(f"GLUE TSV folder {self.glue_dir} does not exist")

    def describe(self) -> str:
        return f"tsv:{os.path.abspath(self.glue_dir)}"

    def available_splits(self, task: Task) -> list[str]:
        return tsv.available_splits(self.glue_dir, task)

    def missing_reason(self, task: Task) -> str:
        if self.available_splits(task):
            return ""
        folder = os.path.join(self.glue_dir, task.tsv_dir)
        files = ", ".join(task.splits.values())
        return f"no {files} under {folder} (or use tfds glue/{task.tfds_config})"

    def locate(self, task: Task, split: str) -> str:
        return str(tsv.split_path(self.glue_dir, task, split))

    def examples(self, task: Task, split: str) -> list[dict]:
        return tsv.read_split(self.glue_dir, task, split)

    def load(self, task: Task, split: str):
        import tensorflow as tf

        columns = _tensor_columns(task, self.examples(task, split))
        return tf.data.Dataset.from_tensor_slices(columns)


class TfdsSource(Source):
    """tfds' ``glue`` builder, downloading where allowed or reading a manual dir."""

    def __init__(self, data_dir=None, manual_dir=None, download: bool = True):
        from glue_tf.data import tfds_source

        self._tfds = tfds_source
        self.data_dir = os.path.expanduser(os.fspath(data_dir or tfds_source.DEFAULT_DATA_DIR))
        self.manual_dir = os.fspath(manual_dir) if manual_dir else None
        self.download = download
        if self.manual_dir and not os.path.isdir(self.manual_dir):
            raise MissingDataError(f"tfds manual dir {self.manual_dir} does not exist")

    def describe(self) -> str:
        origin = f"manual_dir={os.path.abspath(self.manual_dir)}" if self.manual_dir else "download"
        return f"tfds:glue data_dir={self.data_dir} {origin}"

    def _can_prepare(self, task: Task) -> bool:
        if self._tfds.is_prepared(task, self.data_dir):
            return True
        if self.manual_dir:
            return not self._tfds.missing_archives(task, self.manual_dir)
        if self.download:
            # No network and nothing prepared: one error naming every way to get the data, now,
            # not after minutes of tfds' retries (and before any model is built).
            self._tfds.check_download(task, self.data_dir)
        return self.download

    def available_splits(self, task: Task) -> list[str]:
        return list(task.splits) if self._can_prepare(task) else []

    def missing_reason(self, task: Task) -> str:
        if self._can_prepare(task):
            return ""
        try:
            self._tfds.prepare(task, self.data_dir, self.manual_dir, self.download)
        except MissingDataError as error:
            return str(error).removeprefix(f"{task.display_name}: ")
        return ""

    def locate(self, task: Task, split: str) -> str:
        return f"tfds glue/{task.tfds_config} split {split}"

    def load(self, task: Task, split: str):
        return self._tfds.load_split(task, split, self.data_dir, self.manual_dir, self.download)

    def examples(self, task: Task, split: str) -> list[dict]:
        rows = []
        for element in self.load(task, split).as_numpy_iterator():
            row = {"idx": int(element["idx"])}
            row["label"] = float(element["label"]) if task.is_regression else int(element["label"])
            for feature in task.text_features:
                row[feature] = element[feature].decode("utf-8")
            rows.append(row)
        rows.sort(key=lambda r: r["idx"])
        return rows


def make_source(glue_dir=None, tfds_manual_dir=None, tfds_data_dir=None, download: bool = True) -> Source:
    """The source the command-line flags name: a TSV folder wins, else tfds."""
    if glue_dir:
        return TsvSource(glue_dir)
    return TfdsSource(data_dir=tfds_data_dir, manual_dir=tfds_manual_dir, download=download)


def label_distribution(task: Task, examples: list[dict]) -> dict:
    """Counts per label name (test splits: ``unlabelled``); STS-B: score range and mean."""
    if task.is_regression:
        scores = [e["label"] for e in examples if e["label"] >= 0]
        if not scores:
            return {"unlabelled": len(examples)}
        return {"min": min(scores), "max": max(scores), "mean": sum(scores) / len(scores)}
    counts = Counter(e["label"] for e in examples)
    named = {"unlabelled" if k < 0 else task.label_names[k]: v for k, v in sorted(counts.items())}
    return named
