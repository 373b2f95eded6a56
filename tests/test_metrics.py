import math

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm

from glue_tf import metrics
from glue_tf.tasks import GLUE_TASKS, TASKS


@pytest.mark.parametrize("seed", range(20))
def test_classification_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    classes = int(rng.integers(2, 4))
    y_true = rng.integers(0, classes, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, classes, n))
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert metrics.matthews_corrcoef(y_true, y_pred) == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))
    if classes == 2:
        expected = skm.f1_score(y_true, y_pred, zero_division=0.0)
        assert metrics.f1(y_true, y_pred) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(20))
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 300))
    y_true = np.round(rng.uniform(0, 5, n), 1)  # rounded: ties, as in STS-B
    y_pred = y_true + rng.normal(0, 1.5, n)
    if seed % 3 == 0:
        y_pred = np.round(y_pred)  # ties in the predictions too
    assert metrics.pearson(y_true, y_pred) == pytest.approx(scipy.stats.pearsonr(y_true, y_pred)[0])
    assert metrics.spearman(y_true, y_pred) == pytest.approx(scipy.stats.spearmanr(y_true, y_pred)[0])


def test_degenerate_inputs_do_not_divide_by_zero():
    ones = np.ones(10, dtype=int)
    mixed = np.array([0, 1] * 5)
    # One class only, or constant predictions: scikit-learn's values.
    assert metrics.matthews_corrcoef(ones, ones) == skm.matthews_corrcoef(ones, ones) == 0.0
    assert metrics.matthews_corrcoef(mixed, ones) == skm.matthews_corrcoef(mixed, ones) == 0.0
    zeros = np.zeros(10, dtype=int)
    assert metrics.f1(zeros, zeros) == skm.f1_score(zeros, zeros, zero_division=0.0) == 0.0
    assert metrics.f1(mixed, zeros) == 0.0
    # Constant vectors: SciPy answers NaN; we answer 0.0 so a GLUE mean stays finite.
    constant = np.full(10, 2.5)
    assert math.isnan(scipy.stats.pearsonr(mixed.astype(float), constant)[0])
    assert metrics.pearson(mixed, constant) == 0.0
    assert metrics.spearman(mixed, constant) == 0.0
    assert metrics.pearson(mixed, mixed) == pytest.approx(1.0)


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="zero examples"):
        metrics.f1([], [])


def test_compute_metrics_uses_the_task_metrics_in_points():
    result = metrics.compute_metrics(TASKS["mrpc"], [1, 0, 1, 1], [1, 0, 0, 1])
    assert set(result) == {"f1", "accuracy"}
    assert result["accuracy"] == 75.0 and result["f1"] == pytest.approx(80.0)
    stsb = metrics.compute_metrics(TASKS["stsb"], [1.0, 2.0, 3.0], [1.1, 2.5, 2.9])
    assert set(stsb) == {"pearson", "spearman"} and stsb["spearman"] == pytest.approx(100.0)
    assert metrics.compute_metrics(TASKS["cola"], [0, 1, 0, 1], [1, 0, 1, 0]) == {"matthews_corrcoef": -100.0}


def test_score_components_from_per_split_metrics():
    mnli = {"validation_matched": {"accuracy": 80.0}, "validation_mismatched": {"accuracy": 82.0}}
    components = metrics.score_components(TASKS["mnli"], mnli)
    assert components == {"accuracy_matched": 80.0, "accuracy_mismatched": 82.0}
    assert metrics.complete_score(TASKS["mnli"], components) == pytest.approx(81.0)
    half = metrics.score_components(TASKS["mnli"], {"validation_matched": {"accuracy": 80.0}})
    assert half == {"accuracy_matched": 80.0} and metrics.complete_score(TASKS["mnli"], half) is None


def test_human_baseline_scores_come_from_the_task_registry():
    assert metrics.human_score(TASKS["mrpc"]) == pytest.approx((86.3 + 80.8) / 2)
    assert metrics.human_score(TASKS["ax"]) is None
    assert metrics.human_glue_score() == 87.1  # the leaderboard's human row


BERT_LARGE = {
    "cola": {"matthews_corrcoef": 60.5},
    "sst2": {"accuracy": 94.9},
    "mrpc": {"f1": 89.3, "accuracy": 85.4},
    "stsb": {"pearson": 87.6, "spearman": 86.5},
    "qqp": {"f1": 72.1, "accuracy": 89.3},
    "mnli": {"accuracy_matched": 86.7, "accuracy_mismatched": 85.9},
    "qnli": {"accuracy": 92.7},
    "rte": {"accuracy": 70.1},
    "wnli": {"accuracy": 65.1},
}


def test_leaderboard_bert_large_row_gives_80_5():
    summary = metrics.summarize(BERT_LARGE)
    assert metrics.round_score(summary["glue_score"]) == 80.5
    assert summary["task_scores"]["mrpc"] == pytest.approx(87.35)
    assert summary["task_scores"]["mnli"] == pytest.approx(86.3)


def test_leaderboard_human_row_gives_87_1():
    summary = metrics.summarize(metrics.human_baseline_results())
    assert summary["glue_score"] == pytest.approx(87.05)
    assert metrics.round_score(summary["glue_score"]) == 87.1
    assert metrics.describe(summary) == "GLUE score 87.1"


def test_partial_results_are_never_called_a_glue_score():
    partial = {name: BERT_LARGE[name] for name in ("cola", "mrpc", "rte")}
    partial["ax"] = {"matthews_corrcoef": 30.0}
    summary = metrics.summarize(partial)
    assert summary["glue_score"] is None
    assert summary["present"] == ["cola", "mrpc", "rte"]
    assert summary["missing"] == [n for n in GLUE_TASKS if n not in ("cola", "mrpc", "rte")]
    assert summary["mean_over_present"] == pytest.approx((60.5 + 87.35 + 70.1) / 3)
    assert summary["diagnostic"] == 30.0  # AX is reported apart, not in the mean
    line = metrics.describe(summary)
    assert "not a GLUE score" in line and "sst2" in line and "GLUE score 7" not in line


def test_round_score_rounds_half_up_like_the_leaderboard():
    assert metrics.round_score(87.05) == 87.1
    assert metrics.round_score(80.525) == 80.5
    assert metrics.round_score(-0.05) == -0.1
    assert metrics.round_score(1.25) == 1.3  # Python's round() gives 1.2 (half to even)
    assert metrics.round_score(0.849999) == 0.8


def test_missing_component_is_an_error():
    with pytest.raises(KeyError, match="accuracy_mismatched"):
        metrics.task_score(TASKS["mnli"], {"accuracy_matched": 0.8})
