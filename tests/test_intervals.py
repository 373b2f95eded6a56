"""Bootstrap intervals of dev scores (glue_tf.intervals), checked against cases worked out by hand."""

import numpy as np
import pytest

from glue_tf import intervals
from glue_tf.tasks import TASKS


def _seed(labels, predictions, split="validation"):
    return {split: {"idx": np.arange(len(labels)), "labels": np.asarray(labels), "predictions": np.asarray(predictions)}}


def test_accuracy_interval_matches_the_binomial_by_hand():
    # 80 of 100 right: the bootstrap standard error of the accuracy is sqrt(0.8 * 0.2 / 100) = 4 points,
    # so the 95% interval is close to 80 ± 1.96 * 4 = [72.2, 87.8]; resampled accuracies are whole points.
    labels = np.array([1] * 50 + [0] * 50)
    predictions = labels.copy()
    predictions[:10], predictions[50:60] = 0, 1
    found = intervals.task_interval(TASKS["rte"], [_seed(labels, predictions)])
    assert found["method"] == "BCa"
    assert found["ci95"][0] == pytest.approx(72.2, abs=1.5) and found["ci95"][1] == pytest.approx(87.8, abs=1.5)
    assert found == intervals.task_interval(TASKS["rte"], [_seed(labels, predictions)])  # fixed seed


def test_a_degenerate_distribution_falls_back_to_the_percentile_method():
    # Every prediction right: every resample scores 100, BCa is undefined, the interval is [100, 100].
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    assert intervals.task_interval(TASKS["rte"], [_seed(labels, labels)]) == {"ci95": [100.0, 100.0],
                                                                             "method": "percentile"}


def test_several_seeds_give_the_interval_of_their_mean_and_mnli_resamples_each_split():
    labels = np.array([0, 1, 2, 0, 1, 2] * 5)
    wrong = (labels + 1) % 3
    seeds = [{"validation_matched": _seed(labels, labels)["validation"],
              "validation_mismatched": _seed(labels, wrong if k else labels)["validation"]} for k in range(2)]
    # Matched: 100 for both seeds; mismatched: 100 and 0; the mean over seeds is 75 on any resample.
    assert intervals.task_interval(TASKS["mnli"], seeds)["ci95"] == [75.0, 75.0]


def test_paired_difference_of_identical_runs_is_zero_and_of_different_ones_is_shown():
    labels = np.array([1, 0] * 30)
    noisy = labels.copy()
    noisy[:20] = 1 - noisy[:20]
    runs = {"rte": [_seed(labels, noisy)]}
    same = intervals.paired_difference(runs, runs, {"rte": TASKS["rte"]})
    assert same["tasks"]["rte"] == {"difference": 0.0, "ci95": [0.0, 0.0], "method": "percentile"}
    assert not intervals.shows_difference(same["mean"]["ci95"])
    better = intervals.paired_difference({"rte": [_seed(labels, labels)]}, runs, {"rte": TASKS["rte"]})
    assert better["tasks"]["rte"]["difference"] == pytest.approx(100 * 20 / 60)
    assert intervals.shows_difference(better["tasks"]["rte"]["ci95"]) and better["tasks"]["rte"]["ci95"][0] > 15
