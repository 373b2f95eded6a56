"""The compiled path's shape grid, its sub-batch rule and the warm-up texts that land on every grid shape."""

import numpy as np
import pytest

from glue_tf import backbones
from glue_tf.exports import signatures
from glue_tf.tasks import TASKS


@pytest.mark.parametrize("max_seq_length, widths", [
    (128, (16, 32, 64, 128)), (64, (16, 32, 64)), (100, (16, 32, 64, 100)), (256, (16, 32, 64, 128, 256)),
    (8, (8,)), (16, (16,)),
])
def test_grid_widths_are_capped_at_and_end_with_max_length(max_seq_length, widths):
    assert signatures.grid_widths(max_seq_length) == widths
    assert signatures.grid_shapes(max_seq_length) == [(b, w) for b in (1, 8, 64) for w in widths]


@pytest.mark.parametrize("rows, sizes", [
    (0, []), (1, [1]), (2, [1, 1]), (5, [8]), (8, [8]), (9, [8, 1]), (33, [64]), (64, [64]), (65, [64, 1]),
    (130, [64, 64, 1, 1]), (200, [64, 64, 64, 8]),
])
def test_sub_batches_take_the_largest_grid_size_at_most_twice_the_rows_left(rows, sizes):
    assert signatures.sub_batches(rows) == sizes
    assert sum(min(size, rows - sum(sizes[:k])) for k, size in enumerate(sizes)) == rows  # every row, once


@pytest.mark.parametrize("task_name", ["cola", "mrpc"])
def test_warmup_texts_land_in_every_grid_width(tiny_preset, task_name):
    task = TASKS[task_name]
    _, preprocessor = backbones.load(str(tiny_preset), sequence_length=40)
    rows = signatures.warmup_texts(preprocessor, task.text_features, 40)
    assert sorted(rows) == [16, 32, 40]
    for width, columns in rows.items():
        assert sorted(columns) == sorted(task.text_features)
        packed = preprocessor(x=tuple(np.array(columns[f]) for f in task.text_features))
        length = int(np.asarray(packed["padding_mask"]).sum())
        assert min(w for w in (16, 32, 40) if w >= length) == width
        if len(task.text_features) == 2:  # the length is shared between the fields
            assert all(columns[f][0] for f in task.text_features)


def test_warmup_requests_of_a_version_without_the_file_are_empty(tmp_path):
    assert signatures.warmup_requests(tmp_path) == []
