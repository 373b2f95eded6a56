import zipfile

import numpy as np
import pytest

from glue_tf import report, submission
from glue_tf.tasks import GLUE_TASKS, TASKS


def _result(name, value, majority=50.0):
    """A task result as train_task writes it: scores in points, padding efficiency a fraction."""
    task = TASKS[name]
    return {"dev": {key: value for key, _, _ in task.score_components}, "dev_score": value, "best_epoch": 2,
            "wall_seconds": 10.0, "train_examples_per_second": 100.0, "padding_efficiency": 0.95,
            "precision": {"policy": "float32"}, "majority_score": majority}


def test_partial_report_names_missing_tasks_and_no_glue_score(tmp_path):
    results = {"cola": _result("cola", 50.0), "mrpc": _result("mrpc", 80.0)}
    written = report.write(tmp_path, results, {"qqp": "no data"}, wall_seconds=20.0)
    assert written["glue_score"] is None
    assert written["mean_over_present"] == pytest.approx(65.0)
    assert written["missing"] == [n for n in GLUE_TASKS if n not in ("cola", "mrpc")]
    markdown = (tmp_path / "report.md").read_text()
    assert "mean over 2 of 9 tasks 65.0 (not a GLUE score" in markdown
    assert "GLUE score 65" not in markdown
    assert "| MRPC | F1 80.0 / acc 80.0 | 80.0 | – | 50.0 | 83.6 | 2 | 10 | 100.0 | 95.0% |" in markdown
    assert "- **QQP**: no data" in markdown
    assert (tmp_path / "report.png").is_file()


def test_seeds_report_their_mean_and_a_model_below_the_majority_class_is_flagged(tmp_path):
    seeded = _result("rte", 60.0)  # best seed
    seeded.update(dev_mean={"accuracy": 55.0}, dev_score_mean=55.0, dev_score_std=4.0, best_seed=43,
                  seeds=[{"seed": 42, "best_score": 51.0}, {"seed": 43, "best_score": 59.0},
                         {"seed": 44, "best_score": 55.0}])
    results = {"rte": seeded, "wnli": _result("wnli", 49.3, majority=56.3)}
    written = report.write(tmp_path, results, {})
    assert written["tasks"]["rte"]["score"] == pytest.approx(55.0)  # the mean, not the best seed
    assert written["tasks"]["wnli"]["below_majority"] and not written["tasks"]["rte"]["below_majority"]
    markdown = (tmp_path / "report.md").read_text()
    assert "| RTE | acc 55.0 | 55.0 ± 4.0 | – | 50.0 |" in markdown
    assert "RTE: mean ± std over 3 seeds (42, 43, 44); the export is seed 43" in markdown
    assert "| WNLI | acc 49.3 | 49.3 | – | 56.3 ⚠ |" in markdown
    assert "WNLI: below the majority-class score" in markdown


def test_majority_baseline_predicts_the_training_majority():
    from glue_tf.metrics import majority_baseline

    wnli = majority_baseline(TASKS["wnli"], [0, 0, 0, 1], {"validation": np.array([0] * 40 + [1] * 31)})
    assert wnli == {"accuracy": pytest.approx(100 * 40 / 71)}
    mrpc = majority_baseline(TASKS["mrpc"], [1, 1, 0], {"validation": np.array([1, 1, 1, 0])})
    assert mrpc == {"f1": pytest.approx(100 * 6 / 7), "accuracy": pytest.approx(75.0)}
    assert majority_baseline(TASKS["stsb"], [1.0, 3.0], {"validation": np.array([0.0, 5.0])}) == {"pearson": 0.0, "spearman": 0.0}


def test_full_report_gives_the_glue_score():
    results = {name: _result(name, 80.0) for name in GLUE_TASKS}
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


def test_report_rounds_points_half_up_like_the_leaderboard(tmp_path):
    result = _result("mrpc", 80.25, majority=68.25)  # exact binary halves: Python's format would give 80.2
    written = report.write(tmp_path, {"mrpc": result}, {})
    assert written["tasks"]["mrpc"]["dev"] == {"f1": 80.25, "accuracy": 80.25}  # report.json keeps the points
    assert "| MRPC | F1 80.3 / acc 80.3 | 80.3 | – | 68.3 | 83.6 |" in (tmp_path / "report.md").read_text()
