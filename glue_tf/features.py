"""From tfds-shaped examples to model batches padded only as far as each batch needs.

Tokenization (KerasHub's preprocessor: tokenize, pack one or two segments,
truncate to the max length) runs once per split inside ``tf.data``; the result is
kept unpadded in memory. Each epoch then draws a *batch plan*: examples are
shuffled, cut into windows of ``WINDOW_BATCHES`` batches, sorted by length
inside each window and batched, and the batches are shuffled again. Batches are
padded to their own longest example, so the model computes close to the real
tokens (GLUE sentences are short: padding every batch to 128 wastes 2x to 11x)
while the order stays random at the scale of windows. Under ``tf.distribute``
every global batch is split across replicas, so every worker takes the same
number of steps.

The training input pipeline is public here (``encode_sample``, ``batch_plan``,
``train_datasets``): ``glue-tf train``, the benchmarks and the tests build their
batches with the same functions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from glue_tf.data.sources import Source
from glue_tf.tasks import Task

WINDOW_BATCHES = 50
TOKENIZE_BATCH = 1024
# Under XLA (--jit-compile) every new batch width is a compilation: widths are rounded up to steps of 16.
XLA_WIDTH_MULTIPLE = 16
# Batches gathered in parallel and kept ready ahead of the step (see batches_dataset).
PIPELINE_DEPTH = 2


@dataclasses.dataclass
class EncodedSplit:
    """One split, tokenized and packed, without padding."""

    token_ids: np.ndarray  # flat int32 values of all examples, concatenated
    segment_ids: np.ndarray
    lengths: np.ndarray  # int32, tokens per example
    labels: np.ndarray  # int64 class ids, or float32 scores
    idx: np.ndarray  # tfds ``idx`` of each example

    def __len__(self) -> int:
        return int(self.lengths.size)

    @property
    def row_splits(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])

    def subset(self, rows: np.ndarray) -> "EncodedSplit":
        splits = self.row_splits
        take = np.concatenate([np.arange(splits[r], splits[r + 1]) for r in rows]) if len(rows) else np.zeros(0, int)
        return EncodedSplit(
            token_ids=self.token_ids[take],
            segment_ids=self.segment_ids[take],
            lengths=self.lengths[rows],
            labels=self.labels[rows],
            idx=self.idx[rows],
        )


def text_inputs(task: Task, example: dict) -> tuple:
    """The task's text fields of a tfds-shaped example, in segment order."""
    return tuple(example[feature] for feature in task.text_features)


def encode(dataset, task: Task, preprocessor) -> EncodedSplit:
    """Tokenizes a ``tf.data`` split of tfds-shaped dicts with a KerasHub preprocessor."""
    import tensorflow as tf

    if not preprocessor.built:
        preprocessor.build(None)  # creates the packer before tracing

    def tokenize(batch):
        features = preprocessor(x=text_inputs(task, batch))
        lengths = tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1)
        # Families without segment embeddings (RoBERTa, DistilBERT, DeBERTaV3) pack no segment ids.
        segments = features.get("segment_ids", tf.zeros_like(features["token_ids"]))
        return features["token_ids"], segments, lengths, batch["label"], batch["idx"]

    pipeline = dataset.batch(TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    pieces = {"token_ids": [], "segment_ids": [], "lengths": [], "labels": [], "idx": []}
    for token_ids, segment_ids, lengths, labels, idx in pipeline.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        mask = np.arange(token_ids.shape[1])[None, :] < lengths[:, None]
        pieces["token_ids"].append(token_ids[mask].astype(np.int32))  # row-major: example by example
        pieces["segment_ids"].append(segment_ids[mask].astype(np.int32))
        pieces["lengths"].append(lengths.astype(np.int32))
        pieces["labels"].append(labels)
        pieces["idx"].append(idx)
    label_dtype = np.float32 if task.is_regression else np.int64
    if not pieces["lengths"]:
        empty = np.zeros(0, np.int32)
        return EncodedSplit(empty, empty, empty, np.zeros(0, label_dtype), empty)
    return EncodedSplit(
        token_ids=np.concatenate(pieces["token_ids"]),
        segment_ids=np.concatenate(pieces["segment_ids"]),
        lengths=np.concatenate(pieces["lengths"]),
        labels=np.concatenate(pieces["labels"]).astype(label_dtype),
        idx=np.concatenate(pieces["idx"]),
    )


def batch_plan(lengths: np.ndarray, batch_size: int, seed: int, drop_remainder: bool = False) -> list[np.ndarray]:
    """One epoch's batches of row numbers: shuffled, length-sorted within windows, shuffled again."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(lengths.size)
    window = batch_size * WINDOW_BATCHES
    batches = []
    for start in range(0, order.size, window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, chunk.size, batch_size))
    if drop_remainder and batches and batches[-1].size < batch_size:
        # The short batch sits at the end of the last window, before the shuffle.
        batches = [b for b in batches if b.size == batch_size]
    rng.shuffle(batches)
    return batches


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool) -> int:
    """Number of batches ``batch_plan`` makes."""
    return num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)


def sorted_plan(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Deterministic batches for evaluation and prediction: sorted by length, no shuffle."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, order.size, batch_size)]


def replica_slices(plan: list[np.ndarray], num_replicas: int, replica_ids: list[int]) -> list[np.ndarray]:
    """Per-replica batches, in the order a worker feeds its local replicas.

    Each global batch is dealt out round-robin (``batch[r::num_replicas]``), so
    neighbours in length land on different replicas and all slices pad alike.
    """
    return [batch[r::num_replicas] for batch in plan for r in replica_ids]


def padding_efficiency(lengths: np.ndarray, batches: list[np.ndarray], width_multiple: int = 1, max_width: int = 512) -> float:
    """Real tokens / computed tokens when each batch is padded as ``batches_dataset`` pads it."""
    real = sum(int(lengths[b].sum()) for b in batches)
    computed = sum(bucket_width(int(lengths[b].max()), width_multiple, max_width) * b.size for b in batches if b.size)
    return real / computed if computed else 1.0


ALL_FEATURES = ("token_ids", "segment_ids", "padding_mask")


def bucket_width(longest: int, multiple: int, max_width: int) -> int:
    """``longest`` rounded up to ``multiple`` (at most ``max_width``): XLA compiles once per width."""
    return min(-(-longest // multiple) * multiple, max(max_width, longest))


def batches_dataset(
    encoded: EncodedSplit,
    batches: list[np.ndarray],
    with_labels: bool = True,
    feature_names=ALL_FEATURES,
    width_multiple: int = 1,
    max_width: int = 512,
):
    """A ``tf.data.Dataset`` of ``(features, label)`` padded to each batch's longest example.

    ``feature_names`` picks the packed inputs the model reads. ``width_multiple`` > 1
    rounds each batch's width up (see ``bucket_width``) so an XLA-compiled step sees a
    handful of shapes instead of one per length.
    """
    import tensorflow as tf

    tokens = tf.RaggedTensor.from_row_lengths(encoded.token_ids, encoded.lengths)
    segments = tf.RaggedTensor.from_row_lengths(encoded.segment_ids, encoded.lengths)
    lengths = tf.constant(encoded.lengths)
    labels = tf.constant(encoded.labels)
    flat = np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, np.int64)
    plan = tf.RaggedTensor.from_row_lengths(flat, [b.size for b in batches])

    def gather(rows):
        row_lengths = tf.gather(lengths, rows)
        width = tf.reduce_max(row_lengths)
        if width_multiple > 1:
            rounded = (width + width_multiple - 1) // width_multiple * width_multiple
            width = tf.minimum(rounded, tf.maximum(max_width, width))
        shape = tf.stack([tf.size(rows, out_type=tf.int64), tf.cast(width, tf.int64)])
        features = {
            "token_ids": tf.gather(tokens, rows).to_tensor(shape=shape),
            "segment_ids": tf.gather(segments, rows).to_tensor(shape=shape),
            "padding_mask": tf.sequence_mask(row_lengths, width),
        }
        features = {name: features[name] for name in feature_names}
        return (features, tf.gather(labels, rows)) if with_labels else features

    # No tf.data autotuning: its thread's wake-ups held up an iterator's destructor, so a ``fit`` that stops at
    # the last planned batch without reading the dataset's end returned 26-32 s after its last step
    # (bench/fit_widths.py). A batch is ready in 2-3 ms against a step of hundreds, so two parallel
    # calls and two batches ahead keep any step fed.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_tensor_slices(plan).with_options(options)
    return dataset.map(gather, num_parallel_calls=PIPELINE_DEPTH, deterministic=True).prefetch(PIPELINE_DEPTH)


def sample_rows(count: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted row numbers of a seeded random sample of ``limit`` out of ``count``; None: keep all."""
    if not limit or limit >= count:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def encode_sample(source: Source, task: Task, split: str, preprocessor, limit: int | None, seed: int):
    """Tokenizes ``split``, or only a seeded sample of ``limit`` rows of it (a quick run of QQP need
    not tokenize 364k pairs); the sample is the same whether drawn before or after tokenizing."""
    import tensorflow as tf

    dataset = source.load(task, split)
    count = int(dataset.cardinality())
    rows = sample_rows(count, limit, seed) if count >= 0 else None
    if rows is not None:
        keep = np.zeros(count, bool)
        keep[rows] = True
        keep = tf.constant(keep)
        chunk = 4096  # masks whole chunks: a per-example filter costs seconds on SST-2's 67k rows

        def select(number, examples):
            start = number * chunk
            mask = keep[start : start + tf.shape(examples["idx"], out_type=tf.int64)[0]]
            return tf.nest.map_structure(lambda column: tf.boolean_mask(column, mask), examples)

        dataset = dataset.batch(chunk).enumerate().map(select).unbatch()
    encoded = encode(dataset, task, preprocessor)
    rows = sample_rows(len(encoded), limit, seed)  # a source of unknown length: sample after tokenizing
    return encoded if rows is None else encoded.subset(rows)


def epoch_plan(lengths: np.ndarray, cfg, epoch: int, replicas: int = 1) -> list[np.ndarray]:
    """The batches of ``epoch``: a shuffle of its own, seeded by the run's seed and the epoch, so a
    resumed run draws the same order; over several replicas every batch is whole."""
    return batch_plan(lengths, cfg.batch_size, seed=cfg.seed * 1000 + epoch, drop_remainder=replicas > 1)


def train_datasets(encoded, cfg, strategy, first_epoch: int, skip: int, feature_names):
    """Batches from step ``skip`` of epoch ``first_epoch`` on; returns (datasets, steps per epoch, efficiency).

    One replica: a dataset for the rest of a resumed epoch (if ``skip``) and one for
    the epochs after it, as Keras' ``fit`` takes a fixed number of steps per epoch.
    Several replicas: one per-replica dataset of all remaining batches.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    plans = [epoch_plan(encoded.lengths, cfg, epoch, replicas) for epoch in range(cfg.epochs)]
    steps = len(plans[0])
    padding = {"width_multiple": XLA_WIDTH_MULTIPLE if cfg.jit_compile else 1, "max_width": cfg.max_seq_length}
    all_slices = [s for plan in plans for s in replica_slices(plan, replicas, list(range(replicas)))]
    efficiency = padding_efficiency(encoded.lengths, all_slices, **padding)
    resumed = plans[first_epoch][skip:] if first_epoch < cfg.epochs else []
    later = [batch for plan in plans[first_epoch + 1 :] for batch in plan]
    if replicas == 1:
        segments = ([resumed] if skip else []) + [later if skip else resumed + later]
        return [batches_dataset(encoded, s, feature_names=feature_names, **padding) for s in segments], steps, efficiency

    remaining = resumed + later

    def dataset_fn(context: tf.distribute.InputContext):
        local = replicas // context.num_input_pipelines
        ids = [context.input_pipeline_id * local + k for k in range(local)]
        slices = replica_slices(remaining, replicas, ids)
        return batches_dataset(encoded, slices, feature_names=feature_names, **padding)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return [strategy.distribute_datasets_from_function(dataset_fn, options)], steps, efficiency
