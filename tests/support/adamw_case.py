"""The case the fused AdamW is held to Keras' AdamW on: one small model, its optimizer, its data.

Shared by tests/test_optimization.py (one replica, ``Model.fit``) and mirrored_step.py (two
replicas under MirroredStrategy), so both compare the same thing. An embedding (its gradient is
sparse, and tokens repeat within a batch), a dense layer, a LayerNorm (no decay) and a dense head;
the warm-up schedule, decay 0.1 and a clip below the gradients' global norm, for 20 steps of 4.
"""

from __future__ import annotations

import numpy as np

STEPS, BATCH = 20, 4


def model(dtype: str | None = None, head_dtype: str | None = None):
    """The model, seeded: every call starts from the same weights. ``None``: the global dtype policy."""
    import keras

    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(50, 8, dtype=dtype),
                             keras.layers.Flatten(dtype=dtype), keras.layers.Dense(6, dtype=dtype),
                             keras.layers.LayerNormalization(dtype=dtype),
                             keras.layers.Dense(3, dtype=head_dtype or dtype)])


def optimizer(optimizer_cls, clip: float | None = 0.5):
    """``optimizer_cls`` (FusedAdamW or Keras' AdamW) as glue-tf configures it, on the warm-up schedule."""
    from glue_tf import optimization

    schedule = optimization.WarmupLinearDecay(3e-2, total_steps=25, warmup_steps=3)
    built = optimizer_cls(learning_rate=schedule, weight_decay=0.1, epsilon=1e-6, global_clipnorm=clip)
    built.exclude_from_weight_decay(var_names=optimization.NO_DECAY_VARIABLES)
    return built


def data(dtype: str):
    """``(token ids, targets)`` for ``STEPS`` batches of ``BATCH``, targets large enough that the clip bites."""
    rng = np.random.default_rng(0)
    return (rng.integers(0, 50, (STEPS * BATCH, 5)).astype("int32"),
            rng.normal(size=(STEPS * BATCH, 3)).astype(dtype) * 4)


def gaps(start, ours, theirs) -> dict:
    """How far Keras' AdamW moved the weights (``moved``, max over all), and how far the two optimizers'
    weights end apart: ``apart`` (max over all), ``relative`` (per variable, to its largest weight)."""
    return {"moved": max(float(np.abs(b - a).max()) for a, b in zip(start, theirs)),
            "apart": max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs)),
            "relative": max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours, theirs))}
