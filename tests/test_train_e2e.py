"""A tiny random BERT trained end to end on GLUE-format examples of every task kind."""

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from glue_tf import tf_startup
from glue_tf.config import TrainConfig
from glue_tf.data.sources import TsvSource
from glue_tf.exports import store
from glue_tf.suite import train_all
from glue_tf.tasks import TASKS
from glue_tf.training import train_task
from support import kept_predictions
from support.glue_files import SIZES

pytestmark = pytest.mark.slow


def _config(preset, **overrides):
    values = dict(backbone=str(preset), epochs=2, batch_size=8, max_train_examples=48, max_eval_examples=48,
                  precision="float32", learning_rate=1e-3, measure_export=False)
    values.update(overrides)
    return TrainConfig(**values)


def _scalar_tags(folder) -> set[str]:
    """The scalar names written to a TensorBoard run folder."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            tags |= {value.tag for value in event_pb2.Event.FromString(record.numpy()).summary.value}
    return tags


def _read_predictions(path):
    with open(path, encoding="utf-8") as handle:
        return list(csv.reader(handle, delimiter="\t"))


@pytest.mark.parametrize("task_name, kind", [("cola", "single"), ("mrpc", "pair"), ("stsb", "regression")])
def test_train_evaluate_export_predict(tiny_preset, glue_dir, tmp_path, task_name, kind):
    task = TASKS[task_name]
    result = train_task(task, TsvSource(glue_dir), _config(tiny_preset, logging_steps=4), tmp_path, verbose=0)

    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert set(result["dev"]) == {key for key, _, _ in task.score_components}
    assert result["best_epoch"] in (1, 2)
    assert result["dev_score"] == max(e["dev_score"] for e in result["epochs"])
    assert all(-100.0 <= v <= 100.0 for v in result["dev"].values())  # points, as GLUE reports them
    if kind == "pair":
        right = result["dev"]["accuracy"] * 48 / 100  # points: a whole number of the 48 dev examples
        assert right >= 1 and right == pytest.approx(round(right))
    assert result["data"]["train_examples"] == 48 and result["data"]["dev_examples"] == {"validation": 48}
    assert 0.5 < result["padding_efficiency"] <= 1.0
    # The dev predictions kept for intervals are the best epoch's (kept as it was scored), not the last one's.
    assert kept_predictions.components(task, tmp_path / "work" / task_name) == pytest.approx(result["dev"])

    version = store.latest(tmp_path, task_name)
    assert version is not None and version.name == "1"
    metadata = json.loads((version / "metadata.json").read_text())
    assert metadata["task"] == task_name and metadata["label_names"] == list(task.label_names)
    assert metadata["max_seq_length"] == 128 and metadata["precision"] == "float32"
    vocabulary = (tiny_preset / "assets" / "tokenizer" / "vocabulary.txt").read_text().splitlines()
    assert metadata["backbone"]["class"] == "BertBackbone" and metadata["vocabulary_size"] == len(vocabulary)
    assert len(metadata["dev_metrics_per_epoch"]) == 2 and metadata["data"]["source"].startswith("tsv:")
    assert metadata["training_config"]["learning_rate"] == 1e-3
    assert metadata["export_seconds"]["save"] > 0 and metadata["export_seconds"]["measure"] >= 0
    assert f"exported {version} in " in (tmp_path / "run.log").read_text()
    assert metadata["score_unit"] == "points" and metadata["dev_metrics"] == result["dev"]

    rows = _read_predictions(tmp_path / "predictions" / task.test_splits["test"])
    assert rows[0] == ["index", "prediction"]
    assert [int(r[0]) for r in rows[1:]] == list(range(len(TsvSource(glue_dir).examples(task, "test"))))
    values = {r[1] for r in rows[1:]}
    if kind == "regression":
        assert all(0.0 <= float(v) <= 5.0 for v in values)
    else:
        assert values <= {"0", "1"}
    # --logging-steps 4 over 6 steps an epoch: one line per epoch inside it, and the same in TensorBoard.
    steps = re.findall(rf"{task_name} epoch (\d) step 4/6: loss (\S+), learning rate (\S+), (\S+) examples/s",
                       (tmp_path / "run.log").read_text())
    assert [epoch for epoch, *_ in steps] == ["1", "2"] and float(steps[1][2]) < float(steps[0][2])  # decaying
    board = tmp_path / "tensorboard" / task_name
    assert {"step_loss", "step_learning_rate", "epoch_loss", "epoch_learning_rate"} <= _scalar_tags(board / "train")
    dev_tags = {f"epoch_dev_{name}" for name in result["dev"]} | {"epoch_dev_score"}
    assert _scalar_tags(board / "dev") == dev_tags
    assert (tmp_path / "work" / task_name / "checkpoint" / "state.json").is_file()


@pytest.mark.long  # trains MNLI-shaped data and scores AX, about 45 s: make test-long keeps make test under 15 minutes
def test_train_all_three_class_mnli_scores_ax_and_reports_partial_results(tiny_preset, glue_dir, tmp_path):
    glue = tmp_path / "glue"  # MNLI and AX only
    for folder in ("MNLI", "diagnostic"):
        shutil.copytree(glue_dir / folder, glue / folder)
    out = tmp_path / "run"

    report = train_all(TsvSource(glue), _config(tiny_preset, epochs=1), out, verbose=0)

    assert set(report["tasks"]) == {"mnli", "ax"}
    assert set(report["tasks"]["mnli"]["dev"]) == {"accuracy_matched", "accuracy_mismatched"}
    assert report["glue_score"] is None and report["present"] == ["mnli"]
    assert "not a GLUE score" in report["summary_line"]
    assert set(report["skipped"]) == {"cola", "sst2", "mrpc", "stsb", "qqp", "qnli", "rte", "wnli"}
    assert "CoLA" in report["skipped"]["cola"] and "train.tsv" in report["skipped"]["cola"]
    assert not report["skipped"]["qqp"].startswith("QQP")  # the line names the task once, not "QQP: QQP: ..."
    markdown = (out / "report.md").read_text()
    assert "| MNLI |" in markdown and "not a GLUE score" in markdown and "Not trained" in markdown
    assert (out / "report.png").stat().st_size > 1000
    assert json.loads((out / "report.json").read_text())["tasks"]["mnli"]["score"] is not None
    log = (out / "run.log").read_text()
    assert "[6/10] mnli: training" in log and "[1/10] cola: skipped" in log
    assert "[10/10] ax: no training data (train); scored with the existing model" in log
    progress = [line[line.index("train-all: task "):] for line in log.splitlines() if "train-all: task " in line]
    assert len(progress) == 10 and progress[0].startswith("train-all: task 1 of 10 (cola), ")
    assert progress[5].endswith("time left unknown until a task has been trained")  # before MNLI, the first trained
    assert re.fullmatch(r"train-all: task 7 of 10 \(qnli\), [\dhms ]+ elapsed, about [\dhms ]+ left", progress[6])
    assert f"report at {out / 'report.md'}" in log
    # In-process the choice is TensorFlow's, or what an earlier in-process CLI call found (test_tf_startup.py
    # checks the CLI's own choice in a fresh process); the line says which.
    assert f"mnli: XLA off (auto: off on CPUs, where it does not pay); {'; '.join(tf_startup.lines())}" in log
    assert tf_startup.lines()[0].startswith("oneDNN") and tf_startup.lines()[1].startswith("XLA cache: ")

    ax = _read_predictions(out / "predictions" / "AX.tsv")
    assert len(ax) == SIZES["ax"]["test"] + 1 and {r[1] for r in ax[1:]} <= {"entailment", "neutral", "contradiction"}
    matched = _read_predictions(out / "predictions" / "MNLI-m.tsv")
    assert len(matched) == SIZES["mnli"]["test_matched"] + 1 and {r[1] for r in matched[1:]} <= set(TASKS["mnli"].label_names)

    result = subprocess.run([sys.executable, "-m", "glue_tf.cli", "submit", "--out", str(out)],
                            capture_output=True, text=True, check=True)
    with zipfile.ZipFile(out / "glue_submission.zip") as archive:
        assert sorted(archive.namelist()) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]
    assert "not included" in result.stdout and "CoLA.tsv" in result.stdout
