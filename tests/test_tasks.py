import pytest

from glue_tf.errors import GlueTfError, UnknownTaskError
from glue_tf.tasks import GLUE_TASKS, TASKS, get_task, parse_task_list


def test_registry_covers_glue_and_ax_in_leaderboard_order():
    assert list(TASKS) == ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax"]
    assert GLUE_TASKS == ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def test_fields_and_labels_match_tfds():
    assert TASKS["cola"].label_names == ("unacceptable", "acceptable")
    assert TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert TASKS["qnli"].label_names == ("entailment", "not_entailment")
    assert TASKS["rte"].label_names == ("entailment", "not_entailment")
    assert TASKS["wnli"].label_names == ("not_entailment", "entailment")
    assert TASKS["qqp"].text_features == ("question1", "question2")
    assert TASKS["mnli"].text_features == ("premise", "hypothesis")
    assert TASKS["qnli"].text_features == ("question", "sentence")
    assert TASKS["sst2"].text_features == ("sentence",)
    assert TASKS["ax"].predicted_by == "mnli" and TASKS["ax"].splits.keys() == {"test"}
    assert list(TASKS["mnli"].splits) == [
        "train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched",
    ]


def test_heads_and_submission_files():
    assert TASKS["stsb"].num_outputs == 1 and TASKS["stsb"].is_regression
    assert TASKS["mnli"].num_outputs == 3
    assert TASKS["cola"].num_outputs == 2
    files = [name for task in TASKS.values() for name in task.test_splits.values()]
    assert files == [
        "CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv",
        "MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv",
    ]


def test_human_baseline_keys_match_score_components():
    for name in GLUE_TASKS:
        task = TASKS[name]
        keys = [key for key, _, _ in task.score_components]
        assert sorted(keys) == sorted(task.human_baseline), name
    assert [k for k, _, _ in TASKS["mnli"].score_components] == ["accuracy_matched", "accuracy_mismatched"]


def test_lookup_by_any_spelling_and_clear_error():
    assert get_task("SST-2") is TASKS["sst2"]
    assert get_task("STS-B").name == "stsb"
    with pytest.raises(UnknownTaskError, match=r"unknown GLUE task 'squad'; known tasks: cola, ") as caught:
        get_task("squad")
    assert isinstance(caught.value, GlueTfError) and not isinstance(caught.value, KeyError)
    assert [t.name for t in parse_task_list("rte,cola")] == ["cola", "rte"]
    assert len(parse_task_list("all")) == 10
