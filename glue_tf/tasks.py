"""The GLUE task registry: the one place that says what each task is.

Data readers, model heads, metrics, export, serving and reports all read these
records instead of keeping their own copies of field names, label names or file
names. Field names, label names and label ids match TensorFlow Datasets'
``glue`` builder exactly, so an example looks the same whichever source it came
from. Pure Python on purpose: the serving container imports it without the
training stack.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from glue_tf.errors import UnknownTaskError

# Split names follow tfds. Each maps to the file of the classic
# ``download_glue_data.py`` layout under the task's folder.
_STANDARD_SPLITS = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


@dataclasses.dataclass(frozen=True)
class Task:
    """Everything the project knows about one GLUE task.

    Attributes:
      name: short id used on the command line and in URLs (``cola``).
      display_name: the leaderboard's spelling (``CoLA``).
      tfds_config: config name of tfds' ``glue`` builder (``glue/<tfds_config>``).
      text_features: tfds feature names, in tfds order (first segment first).
      tsv_columns: for each text feature, its column's header name in the
        GLUE TSV files.
      label_column: header name of the label column in the TSVs.
      label_names: tfds ``ClassLabel`` names in id order; empty for regression.
      metrics: official metric names, in the leaderboard's order.
      splits: tfds split name -> file under ``tsv_dir`` in the GLUE TSV layout.
      dev_splits: the splits scored to report the task (MNLI has two).
      test_splits: the splits submitted to the leaderboard, with the
        submission file each one goes to.
      human_baseline: the leaderboard's human row in points (0-100, GLUE's
        unit for every score), keyed like ``score_components``.
      tsv_dir: folder name in the GLUE TSV layout.
      headerless_columns: column numbers by header name for labelled splits
        whose files have no header (CoLA's train and dev; its test has one).
      tfds_archives: files tfds' builder downloads for this task, under the
        names it expects to find in a ``manual_dir``.
      submit_label_names: whether the leaderboard expects label names in the
        submission (MNLI, QNLI, RTE, AX) rather than 0/1 ids or scores.
      model_task: the task whose model predicts this one (AX uses MNLI's).
      eval_only: a task with no training data of its own (AX).
      score_range: for regression, the range of a score (STS-B: 0 to 5);
        predictions are clipped to it wherever they are served, scored or
        submitted.
    """

    name: str
    display_name: str
    tfds_config: str
    text_features: tuple[str, ...]
    tsv_columns: tuple[str, ...]
    label_column: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    splits: Mapping[str, str]
    dev_splits: tuple[str, ...]
    test_splits: Mapping[str, str]
    human_baseline: Mapping[str, float]
    tsv_dir: str
    tfds_archives: tuple[str, ...]
    headerless_columns: Mapping[str, int] | None = None
    submit_label_names: bool = False
    model_task: str | None = None
    eval_only: bool = False
    score_range: tuple[float, float] | None = None

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_outputs(self) -> int:
        """Width of the model head: one score for regression, else one per label."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.text_features) == 2

    @property
    def predicted_by(self) -> str:
        """Name of the task whose trained model makes this task's predictions."""
        return self.model_task or self.name

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def score_components(self) -> tuple[tuple[str, str, str], ...]:
        """``(key, split, metric)`` for each number the leaderboard shows for this task.

        The task score is the mean of these. A task with one dev split is keyed
        by metric (``f1``, ``accuracy``); MNLI's two dev splits give
        ``accuracy_matched`` and ``accuracy_mismatched``.
        """
        splits = self.dev_splits or tuple(self.test_splits)  # AX: labels come with the test split
        if len(splits) == 1:
            split = splits[0]
            return tuple((metric, split, metric) for metric in self.metrics)
        return tuple(
            (f"{metric}_{split.removeprefix('validation_')}", split, metric)
            for split in splits
            for metric in self.metrics
        )


def _task(**kwargs) -> Task:
    kwargs.setdefault("splits", _STANDARD_SPLITS)
    kwargs.setdefault("dev_splits", ("validation",))
    return Task(**kwargs)


_TASKS = (
    _task(
        name="cola",
        display_name="CoLA",
        tfds_config="cola",
        text_features=("sentence",),
        tsv_columns=("sentence",),
        label_column="is_acceptable",
        # Train/dev have no header (source, label, original label, sentence); test has one.
        headerless_columns={"is_acceptable": 1, "sentence": 3},
        label_names=("unacceptable", "acceptable"),
        metrics=("matthews_corrcoef",),
        test_splits={"test": "CoLA.tsv"},
        human_baseline={"matthews_corrcoef": 66.4},
        tsv_dir="CoLA",
        tfds_archives=("CoLA.zip",),
    ),
    _task(
        name="sst2",
        display_name="SST-2",
        tfds_config="sst2",
        text_features=("sentence",),
        tsv_columns=("sentence",),
        label_column="label",
        label_names=("negative", "positive"),
        metrics=("accuracy",),
        test_splits={"test": "SST-2.tsv"},
        human_baseline={"accuracy": 97.8},
        tsv_dir="SST-2",
        tfds_archives=("SST-2.zip",),
    ),
    _task(
        name="mrpc",
        display_name="MRPC",
        tfds_config="mrpc",
        text_features=("sentence1", "sentence2"),
        tsv_columns=("#1 String", "#2 String"),
        label_column="Quality",
        label_names=("not_equivalent", "equivalent"),
        metrics=("f1", "accuracy"),
        test_splits={"test": "MRPC.tsv"},
        human_baseline={"f1": 86.3, "accuracy": 80.8},
        tsv_dir="MRPC",
        tfds_archives=(
            "msr_paraphrase_train.txt",
            "msr_paraphrase_test.txt",
            "data_mrpc_dev_ids.tsv",
        ),
    ),
    _task(
        name="stsb",
        display_name="STS-B",
        tfds_config="stsb",
        text_features=("sentence1", "sentence2"),
        tsv_columns=("sentence1", "sentence2"),
        label_column="score",
        label_names=(),
        metrics=("pearson", "spearman"),
        test_splits={"test": "STS-B.tsv"},
        human_baseline={"pearson": 92.7, "spearman": 92.6},
        tsv_dir="STS-B",
        tfds_archives=("STS-B.zip",),
        score_range=(0.0, 5.0),
    ),
    _task(
        name="qqp",
        display_name="QQP",
        tfds_config="qqp",
        text_features=("question1", "question2"),
        tsv_columns=("question1", "question2"),
        label_column="is_duplicate",
        label_names=("not_duplicate", "duplicate"),
        metrics=("f1", "accuracy"),
        test_splits={"test": "QQP.tsv"},
        human_baseline={"f1": 59.5, "accuracy": 80.4},
        tsv_dir="QQP",
        tfds_archives=("QQP.zip",),
    ),
    _task(
        name="mnli",
        submit_label_names=True,
        display_name="MNLI",
        tfds_config="mnli",
        text_features=("premise", "hypothesis"),
        tsv_columns=("sentence1", "sentence2"),
        label_column="gold_label",
        label_names=("entailment", "neutral", "contradiction"),
        metrics=("accuracy",),
        splits={
            "train": "train.tsv",
            "validation_matched": "dev_matched.tsv",
            "validation_mismatched": "dev_mismatched.tsv",
            "test_matched": "test_matched.tsv",
            "test_mismatched": "test_mismatched.tsv",
        },
        dev_splits=("validation_matched", "validation_mismatched"),
        test_splits={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
        human_baseline={"accuracy_matched": 92.0, "accuracy_mismatched": 92.8},
        tsv_dir="MNLI",
        tfds_archives=("MNLI.zip",),
    ),
    _task(
        name="qnli",
        submit_label_names=True,
        display_name="QNLI",
        tfds_config="qnli",
        text_features=("question", "sentence"),
        tsv_columns=("question", "sentence"),
        label_column="label",
        label_names=("entailment", "not_entailment"),
        metrics=("accuracy",),
        test_splits={"test": "QNLI.tsv"},
        human_baseline={"accuracy": 91.2},
        tsv_dir="QNLI",
        tfds_archives=("QNLIv2.zip",),
    ),
    _task(
        name="rte",
        submit_label_names=True,
        display_name="RTE",
        tfds_config="rte",
        text_features=("sentence1", "sentence2"),
        tsv_columns=("sentence1", "sentence2"),
        label_column="label",
        label_names=("entailment", "not_entailment"),
        metrics=("accuracy",),
        test_splits={"test": "RTE.tsv"},
        human_baseline={"accuracy": 93.6},
        tsv_dir="RTE",
        tfds_archives=("RTE.zip",),
    ),
    _task(
        name="wnli",
        display_name="WNLI",
        tfds_config="wnli",
        text_features=("sentence1", "sentence2"),
        tsv_columns=("sentence1", "sentence2"),
        label_column="label",
        label_names=("not_entailment", "entailment"),
        metrics=("accuracy",),
        test_splits={"test": "WNLI.tsv"},
        human_baseline={"accuracy": 95.9},
        tsv_dir="WNLI",
        tfds_archives=("WNLI.zip",),
    ),
    _task(
        name="ax",
        submit_label_names=True,
        display_name="AX",
        tfds_config="ax",
        text_features=("premise", "hypothesis"),
        tsv_columns=("sentence1", "sentence2"),
        label_column="label",
        label_names=("entailment", "neutral", "contradiction"),
        metrics=("matthews_corrcoef",),
        splits={"test": "diagnostic.tsv"},
        dev_splits=(),
        test_splits={"test": "AX.tsv"},
        human_baseline={},
        tsv_dir="diagnostic",
        tfds_archives=("tsvsWithoutLabels_AX.tsv",),
        model_task="mnli",
        eval_only=True,
    ),
)

TASKS: Mapping[str, Task] = {task.name: task for task in _TASKS}

# The nine tasks whose scores make up the GLUE score (AX is reported apart).
GLUE_TASKS: tuple[str, ...] = tuple(t.name for t in _TASKS if not t.eval_only)


def get_task(name: str) -> Task:
    """Looks a task up by name (case-insensitive, ``SST-2`` and ``sst2`` alike)."""
    key = name.strip().lower().replace("-", "")
    if key in TASKS:
        return TASKS[key]
    raise UnknownTaskError(f"unknown GLUE task {name!r}; known tasks: {', '.join(TASKS)}")


def parse_task_list(value: str | None) -> list[Task]:
    """Parses ``cola,rte`` (or ``all``/empty for every task) into tasks, in registry order."""
    if not value or value.strip().lower() == "all":
        return list(TASKS.values())
    wanted = {get_task(part).name for part in value.split(",") if part.strip()}
    return [task for task in TASKS.values() if task.name in wanted]
