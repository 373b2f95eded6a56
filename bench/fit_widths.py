"""Keras ``fit`` steps over batches of one width against batches of varying widths, oneDNN as set.

    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.fit_widths fixed   # every batch 32 x 12 tokens
    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.fit_widths varying # widths 5..23, as dynamic padding makes them

The shipped model and optimizer (``glue_tf.task_model``) and input pipeline
(``features.train_datasets``) on random token ids, 120 steps in one ``fit`` call, XLA off as
``glue-tf train`` has it on CPUs. Prints the mean of
the first 20 steps (tracing included) and of the next 100, timed between batch ends, and how long
``fit`` took to return after its last step. Run it with ``TF_ENABLE_ONEDNN_OPTS=0`` too: it shows
what oneDNN's kernels are worth inside ``fit``'s step.

Time steps, not ``fit``'s wall: ``fit`` returns when its iterator over the unfinished dataset is
destroyed, and that waits for tf.data's autotuning thread to wake: this script printed
``fit_returned_after_s`` 26.4 in one of four runs here (a stack taken during such a wait:
``~IteratorResource`` waiting on ``Model::OptimizeLoop``). A wall clock round ``fit`` reads that
wait as a slow step.
"""

import json
import os
import sys
import time

from bench.common import BACKBONE, TRAIN_BATCH, recipe

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STEPS = 120


def main(mode: str) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from glue_tf import features
    from glue_tf import model as model_lib

    task_model = recipe(BACKBONE, learning_rate=1e-4, epochs=1, seed=0, jit_compile=False)
    model = task_model.build(1000).model
    rng = np.random.default_rng(0)
    count = TRAIN_BATCH * STEPS
    lengths = (np.full(count, 12) if mode == "fixed" else rng.integers(5, 24, count)).astype(np.int32)
    encoded = features.EncodedSplit(token_ids=rng.integers(1000, 20000, lengths.sum()).astype(np.int32),
                                    segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
                                    labels=rng.integers(0, 2, count), idx=np.arange(count))
    datasets, _, _ = features.train_datasets(encoded, task_model.config, tf.distribute.get_strategy(), 0, 0,
                                             model_lib.input_names(model))
    batch_ends = []
    step_timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_ends.append(time.perf_counter()))
    started = time.perf_counter()
    model.fit(datasets[0], steps_per_epoch=STEPS, epochs=1, verbose=0, callbacks=[step_timer])
    returned = time.perf_counter()
    print(json.dumps({"widths": mode, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                      "first_20_steps_ms": round(1000 * (batch_ends[19] - started) / 20, 1),
                      "next_100_steps_ms": round(1000 * (batch_ends[119] - batch_ends[19]) / 100, 1),
                      "fit_returned_after_s": round(returned - batch_ends[119], 1)}))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("fixed", "varying"):
        sys.exit(__doc__)
    main(sys.argv[1])
