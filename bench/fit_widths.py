"""Keras ``fit`` steps over batches of one width against batches of varying widths, oneDNN as set.

    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.fit_widths fixed   # every batch 32 x 12 tokens
    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.fit_widths varying # widths 5..23, as dynamic padding makes them
    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.fit_widths new-widths # what a width costs the first time it is seen
    ... new-widths --optimizer-apply raw                           # the update as raw kernels, not XLA

The shipped model and optimizer (``glue_tf.task_model``) and input pipeline
(``features.train_datasets``) on random token ids, 120 steps in one ``fit`` call, XLA off as
``glue-tf train`` has it on CPUs. Prints the first step alone (``first_step_s``: Keras tracing
``fit``'s step, TensorFlow building its graph, then the step), the mean of the first 20 steps and of
the next 100, timed between batch ends, and how long ``fit`` took to return after its last step. Run
it with ``TF_ENABLE_ONEDNN_OPTS=0`` too: it shows what oneDNN's kernels are worth inside ``fit``'s step.

``new-widths``: two epochs over 48 batches, one per width from 40 to 87 tokens (RTE's and MRPC's
range), in a shuffled order each epoch. The first epoch meets every width for the first time; the
second runs the same shapes again. Their difference, less the first step's tracing, is what the
first epoch of a ``glue-tf train`` run pays for each new batch shape (oneDNN builds its kernels per
shape).

Time steps, not ``fit``'s wall: ``fit`` returns when its iterator over the unfinished dataset is
destroyed, and that waits for tf.data's autotuning thread to wake: this script printed
``fit_returned_after_s`` 26.4 in one of four runs here (a stack taken during such a wait:
``~IteratorResource`` waiting on ``Model::OptimizeLoop``). A wall clock round ``fit`` reads that
wait as a slow step.
"""

import argparse
import json
import os
import time

from bench.common import BACKBONE, TRAIN_BATCH, recipe

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STEPS = 120
NEW_WIDTHS = list(range(40, 88))


def main(mode: str, optimizer_apply: str) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from glue_tf import features
    from glue_tf import model as model_lib

    task_model = recipe(BACKBONE, learning_rate=1e-4, epochs=1, seed=0, jit_compile=False,
                        optimizer_apply=optimizer_apply)
    model = task_model.build(1000).model
    rng = np.random.default_rng(0)
    steps, epochs = (len(NEW_WIDTHS), 2) if mode == "new-widths" else (STEPS, 1)
    count = TRAIN_BATCH * steps
    lengths = {"fixed": np.full(count, 12), "varying": rng.integers(5, 24, count),
               "new-widths": np.repeat(NEW_WIDTHS, TRAIN_BATCH)}[mode].astype(np.int32)
    encoded = features.EncodedSplit(token_ids=rng.integers(1000, 20000, lengths.sum()).astype(np.int32),
                                    segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
                                    labels=rng.integers(0, 2, count), idx=np.arange(count))
    datasets, _, _ = features.train_datasets(encoded, task_model.config, tf.distribute.get_strategy(), 0, 0,
                                             model_lib.input_names(model))
    batch_ends = []
    step_timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_ends.append(time.perf_counter()))
    started = time.perf_counter()
    model.fit(datasets[0], steps_per_epoch=steps, epochs=epochs, verbose=0, callbacks=[step_timer])
    returned = time.perf_counter()
    found = {"widths": mode, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "optimizer_apply": optimizer_apply,
             "fit_returned_after_s": round(returned - batch_ends[-1], 1),
             "first_step_s": round(batch_ends[0] - started, 1)}  # tracing, graph building and the first step
    if mode == "new-widths":
        first, second = batch_ends[steps - 1] - started, batch_ends[-1] - batch_ends[steps - 1]
        found.update({"batch_shapes": steps, "first_epoch_s": round(first, 1), "second_epoch_s": round(second, 1),
                      "first_sight_ms_per_shape": round(1000 * (first - (batch_ends[0] - started)
                                                                - second * (steps - 1) / steps) / (steps - 1))})
    else:
        found.update({"first_20_steps_ms": round(1000 * (batch_ends[19] - started) / 20, 1),
                      "next_100_steps_ms": round(1000 * (batch_ends[119] - batch_ends[19]) / 100, 1)})
    print(json.dumps(found))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("widths", choices=("fixed", "varying", "new-widths"))
    parser.add_argument("--optimizer-apply", choices=("xla", "raw", "keras"), default="xla",
                        help="how the AdamW update runs (TrainConfig.optimizer_apply; glue-tf's default: xla)")
    args = parser.parse_args()
    main(args.widths, args.optimizer_apply)
