import zipfile

import numpy as np
import pytest

from glue_tf import report, submission
from glue_tf.tasks import GLUE_TASKS, TASKS


def _result(name, value):
    task = TASKS[name]
    return {"dev": {key: value for key, _, _ in task.score_components}, "best_epoch": 2, "wall_seconds": 10.0,
            "train_examples_per_second": 100.0, "padding_efficiency": 0.95, "precision": {"policy": "float32"}}


def test_partial_report_names_missing_tasks_and_no_glue_score(tmp_path):
    results = {"cola": _result("cola", 0.5), "mrpc": _result("mrpc", 0.8)}
    written = report.write(tmp_path, results, {"qqp": "no data"}, wall_seconds=20.0)
    assert written["glue_score"] is None
    assert written["mean_over_present"] == pytest.approx(65.0)
    assert written["missing"] == [n for n in GLUE_TASKS if n not in ("cola", "mrpc")]
    markdown = (tmp_path / "report.md").read_text()
    assert "mean over 2 of 9 tasks 65.0 (not a GLUE score" in markdown
    assert "GLUE score 65" not in markdown
    assert "| MRPC | F1 80.0 / acc 80.0 | 80.0 | 83.6 | 2 | 10 | 100.0 | 95.0% |" in markdown
    assert "- **QQP**: no data" in markdown
    assert (tmp_path / "report.png").is_file()


def test_full_report_gives_the_glue_score():
    results = {name: _result(name, 0.8) for name in GLUE_TASKS}
    built = report.build(results, {})
    assert built["glue_score"] == pytest.approx(80.0)
    assert built["summary_line"] == "GLUE score 80.0"
    assert "human baseline GLUE score 87.1" in report.to_markdown(built)


def test_submission_files_use_the_leaderboard_formats(tmp_path):
    submission.write_predictions(tmp_path, TASKS["rte"], "test", np.array([1, 0]), np.array([1, 0]))
    submission.write_predictions(tmp_path, TASKS["stsb"], "test", np.array([0, 1]), np.array([5.7, 2.25]))
    submission.write_predictions(tmp_path, TASKS["cola"], "test", np.array([0]), np.array([1]))
    folder = tmp_path / "predictions"
    assert (folder / "RTE.tsv").read_text() == "index\tprediction\n0\tentailment\n1\tnot_entailment\n"
    assert (folder / "STS-B.tsv").read_text() == "index\tprediction\n0\t5.000\n1\t2.250\n"
    assert (folder / "CoLA.tsv").read_text() == "index\tprediction\n0\t1\n"
    path, missing = submission.make_zip(tmp_path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["CoLA.tsv", "RTE.tsv", "STS-B.tsv"]
    assert "MNLI-m.tsv" in missing and "AX.tsv" in missing and len(missing) == 8
    with pytest.raises(FileNotFoundError, match="no test predictions"):
        submission.make_zip(tmp_path / "empty")
