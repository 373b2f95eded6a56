import numpy as np
import pytest

from glue_tf import features


def test_batch_plan_covers_every_row_once_and_groups_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 128, 5000)
    plan = features.batch_plan(lengths, 32, seed=1)
    rows = np.concatenate(plan)
    assert sorted(rows.tolist()) == list(range(5000))
    assert sum(b.size < 32 for b in plan) == 1  # only the last window's remainder is short
    # Sorting inside windows makes batches nearly uniform in length...
    assert features.padding_efficiency(lengths, plan) > 0.9
    # ...which random batching is not.
    random_batches = np.array_split(rng.permutation(5000), 5000 // 32)
    assert features.padding_efficiency(lengths, random_batches) < 0.6


def test_batch_plan_is_seeded_and_reshuffles_per_epoch():
    lengths = np.arange(1000) % 50 + 2
    first = features.batch_plan(lengths, 16, seed=7)
    again = features.batch_plan(lengths, 16, seed=7)
    other = features.batch_plan(lengths, 16, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_drop_remainder_and_replica_slices_give_every_replica_the_same_steps():
    lengths = np.arange(103) % 20 + 2
    plan = features.batch_plan(lengths, 8, seed=0, drop_remainder=True)
    assert len(plan) == features.steps_per_epoch(103, 8, True) == 12
    assert all(b.size == 8 for b in plan)
    worker0 = features.replica_slices(plan, 2, [0])
    worker1 = features.replica_slices(plan, 2, [1])
    assert len(worker0) == len(worker1) == 12
    assert all(a.size == b.size == 4 for a, b in zip(worker0, worker1))
    assert features.steps_per_epoch(103, 8, False) == 13


def test_batches_pad_to_their_longest_example():
    encoded = features.EncodedSplit(
        token_ids=np.arange(1, 11, dtype=np.int32),
        segment_ids=np.zeros(10, np.int32),
        lengths=np.array([2, 5, 3], np.int32),
        labels=np.array([0, 1, 1]),
        idx=np.array([10, 11, 12]),
    )
    dataset = features.batches_dataset(encoded, [np.array([0, 2]), np.array([1])])
    (first, first_labels), (second, _) = list(dataset.as_numpy_iterator())
    assert first["token_ids"].tolist() == [[1, 2, 0], [8, 9, 10]]
    assert first["padding_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert first_labels.tolist() == [0, 1]
    assert second["token_ids"].shape == (1, 5)
    assert features.padding_efficiency(encoded.lengths, [np.array([0, 2]), np.array([1])]) == pytest.approx(10 / 11)
    only_ids = features.batches_dataset(encoded, [np.array([1])], with_labels=False, feature_names=("token_ids",))
    assert set(next(iter(only_ids))) == {"token_ids"}
    sub = encoded.subset(np.array([2, 0]))
    assert sub.token_ids.tolist() == [8, 9, 10, 1, 2] and sub.idx.tolist() == [12, 10]
    # No autotuning thread: fit stops before the dataset's end, and its iterator's destructor waited on it.
    assert dataset.options().autotune.enabled is False


def test_encode_tokenizes_pairs_without_padding(tiny_preset, glue_dir):
    import keras_hub

    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS

    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(str(tiny_preset), sequence_length=64)
    task = TASKS["rte"]
    encoded = features.encode(TsvSource(glue_dir).load(task, "validation"), task, preprocessor)
    rows = len(TsvSource(glue_dir).examples(task, "validation"))
    assert len(encoded) == rows and encoded.idx.tolist() == list(range(rows))
    assert encoded.lengths.max() <= 64 and encoded.token_ids.size == encoded.lengths.sum()
    first = encoded.token_ids[: encoded.lengths[0]]
    cls_id, sep_id = preprocessor.tokenizer.cls_token_id, preprocessor.tokenizer.sep_token_id
    assert first[0] == cls_id and first[-1] == sep_id and (first == sep_id).sum() == 2
    segments = encoded.segment_ids[: encoded.lengths[0]]
    assert segments[0] == 0 and segments[-1] == 1


def test_xla_width_buckets_round_up_and_the_dataset_pads_to_them():
    from glue_tf.features import EncodedSplit, batches_dataset, bucket_width, padding_efficiency

    assert [bucket_width(n, 8, 128) for n in (1, 8, 9, 127, 128)] == [8, 8, 16, 128, 128]
    assert bucket_width(130, 8, 128) == 130  # never below the longest example
    lengths = np.array([3, 5, 9, 12], np.int32)
    encoded = EncodedSplit(np.arange(lengths.sum(), dtype=np.int32), np.zeros(lengths.sum(), np.int32), lengths,
                           np.zeros(4, np.int64), np.arange(4))
    plan = [np.array([0, 1]), np.array([2, 3])]
    widths = [f["token_ids"].shape[1] for f, _ in batches_dataset(encoded, plan, width_multiple=8, max_width=128)]
    assert widths == [8, 16]
    assert padding_efficiency(lengths, plan, width_multiple=8) == pytest.approx(29 / (2 * 8 + 2 * 16))
    assert padding_efficiency(lengths, plan) == pytest.approx(29 / (2 * 5 + 2 * 12))


def test_a_training_sample_is_drawn_before_tokenizing_and_equals_one_drawn_after(tiny_preset, glue_dir):
    import keras_hub

    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS

    class UnknownLengthSource(TsvSource):  # e.g. a filtered stream: sampled after tokenizing instead
        def load(self, task, split):
            return super().load(task, split).filter(lambda example: True)

    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(str(tiny_preset), sequence_length=64)
    task = TASKS["rte"]
    whole = features.encode(TsvSource(glue_dir).load(task, "validation"), task, preprocessor)
    rows = features.sample_rows(len(whole), 40, seed=3)
    assert rows.size == 40 and features.sample_rows(len(whole), 1000, seed=3) is None
    for source in (TsvSource(glue_dir), UnknownLengthSource(glue_dir)):
        sample = features.encode_sample(source, task, "validation", preprocessor, 40, seed=3)
        assert sample.idx.tolist() == whole.idx[rows].tolist()
        np.testing.assert_array_equal(sample.token_ids, whole.subset(rows).token_ids)
