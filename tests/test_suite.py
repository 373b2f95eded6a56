"""``train-all``'s progress line: task i of n, elapsed time, and an estimate once a task has been trained."""

from glue_tf.suite import progress_line


def test_progress_line_says_unknown_until_a_task_was_trained():
    line = progress_line(1, 10, "cola", 0.4, [], to_train=9)
    assert line == "train-all: task 1 of 10 (cola), 0s elapsed, time left unknown until a task has been trained"


def test_progress_line_estimates_from_the_tasks_trained_so_far():
    # Two tasks trained in 100 s and 200 s: 150 s each for the 4 that may still need training.
    line = progress_line(3, 10, "mrpc", 312.0, [100.0, 200.0], to_train=4)
    assert line == "train-all: task 3 of 10 (mrpc), 5m 12s elapsed, about 10m 00s left"
    assert progress_line(9, 10, "wnli", 7500.0, [3600.0], to_train=2).endswith("2h 05m elapsed, about 2h 00m left")
    assert progress_line(2, 2, "rte", 59.6, [59.6], to_train=1).endswith("1m 00s elapsed, about 1m 00s left")
