"""The three sources give the same examples: TSV folder == tfds built offline from the archives."""

import numpy as np
import pytest

from glue_tf.data.errors import MissingDataError
from glue_tf.data.sources import TfdsSource, TsvSource, make_source
from glue_tf.tasks import TASKS

OFFLINE_TASKS = ["cola", "rte", "stsb", "wnli", "ax"]


@pytest.fixture(scope="module")
def offline_tfds(tfds_manual_dir, tfds_data_dir):
    return TfdsSource(data_dir=tfds_data_dir, manual_dir=tfds_manual_dir, download=False)


@pytest.mark.parametrize("task_name", OFFLINE_TASKS)
def test_tsv_folder_equals_tfds_built_from_archives(real_glue_dir, offline_tfds, task_name):
    task = TASKS[task_name]
    tsv_source = TsvSource(real_glue_dir)
    assert offline_tfds.available_splits(task) == tsv_source.available_splits(task) == list(task.splits)
    for split in task.splits:
        from_tsv = tsv_source.examples(task, split)
        from_tfds = offline_tfds.examples(task, split)
        assert len(from_tsv) == len(from_tfds) > 0, split
        for ours, theirs in zip(from_tsv, from_tfds):
            if task.is_regression:  # tfds stores float32: compare at that precision, exactly
                ours = {**ours, "label": np.float32(ours["label"])}
                theirs = {**theirs, "label": np.float32(theirs["label"])}
            assert ours == theirs, f"{task_name}/{split} idx {ours['idx']}"
        # Same tensors too: dtypes and shapes of every field.
        assert tsv_source.load(task, split).element_spec == offline_tfds.load(task, split).element_spec


def test_manual_dir_without_an_archive_names_the_files(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    (manual_dir / "CoLA.zip").write_bytes(b"another task's archive")
    source = TfdsSource(data_dir=tmp_path / "tensorflow_datasets", manual_dir=manual_dir, download=False)
    assert source.available_splits(TASKS["mnli"]) == []
    reason = source.missing_reason(TASKS["mnli"])
    assert "MNLI.zip" in reason and "glue/mnli" in reason
    with pytest.raises(MissingDataError, match="msr_paraphrase_train.txt"):
        source.load(TASKS["mrpc"], "train")


def test_tfds_without_download_uses_only_prepared_data(tmp_path):
    source = make_source(tfds_data_dir=tmp_path, download=False)
    assert isinstance(source, TfdsSource)
    assert source.available_splits(TASKS["cola"]) == []
    assert "not prepared" in source.missing_reason(TASKS["cola"])
