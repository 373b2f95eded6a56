"""Keras ``fit`` steps over batches of one width against batches of varying widths, oneDNN as set.

    TF_ENABLE_ONEDNN_OPTS=1 python bench/fit_widths.py fixed   # every batch 32 x 12 tokens
    TF_ENABLE_ONEDNN_OPTS=1 python bench/fit_widths.py varying # widths 5..23, as dynamic padding makes them

The shipped model, optimizer and input pipeline (``features.train_datasets``) on random token ids;
prints the mean step of the first 20 steps (tracing included) and of the next 100. Run it with
``TF_ENABLE_ONEDNN_OPTS=0`` too: it shows whether oneDNN's kernels engage in ``fit``'s step.
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(mode: str) -> None:
    import numpy as np
    import tensorflow as tf

    from glue_tf import backbones, features, optimization
    from glue_tf import model as model_lib
    from glue_tf.config import TrainConfig
    from glue_tf.tasks import get_task

    task = get_task("cola")
    backbone, _ = backbones.load(str(ROOT / "models/pretrained/all-minilm-l6-v2"), 128)
    model = model_lib.build(backbone, task)
    model.compile(optimizer=optimization.make_optimizer(1e-4, 1000, 0.1, 0.01, 1.0), loss=model_lib.loss_for(task))
    rng = np.random.default_rng(0)
    count = 32 * 120
    lengths = (np.full(count, 12) if mode == "fixed" else rng.integers(5, 24, count)).astype(np.int32)
    encoded = features.EncodedSplit(token_ids=rng.integers(1000, 20000, lengths.sum()).astype(np.int32),
                                    segment_ids=np.zeros(lengths.sum(), np.int32), lengths=lengths,
                                    labels=rng.integers(0, 2, count), idx=np.arange(count))
    config = TrainConfig(batch_size=32, epochs=1, seed=0, jit_compile=False)
    datasets, _, _ = features.train_datasets(encoded, config, tf.distribute.get_strategy(), 0, 0,
                                             model_lib.input_names(model))
    started = time.perf_counter()
    model.fit(datasets[0], steps_per_epoch=20, epochs=1, verbose=0)
    warmed = time.perf_counter()
    model.fit(datasets[0], steps_per_epoch=100, epochs=1, verbose=0)
    done = time.perf_counter()
    print(json.dumps({"widths": mode, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                      "first_20_steps_ms": round(1000 * (warmed - started) / 20, 1),
                      "next_100_steps_ms": round(1000 * (done - warmed) / 100, 1)}))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("fixed", "varying"):
        sys.exit(__doc__)
    main(sys.argv[1])
