import functools

import numpy as np
import pytest

from glue_tf import optimization
from support import adamw_case


def test_schedule_warms_up_then_decays_linearly_to_zero():
    schedule = optimization.WarmupLinearDecay(1e-4, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100, 120)]
    assert values == pytest.approx([0.0, 5e-5, 1e-4, 5e-5, 0.0, 0.0])
    assert optimization.WarmupLinearDecay(**schedule.get_config()).get_config() == schedule.get_config()


def test_fused_adamw_matches_keras_adamw_and_skips_decay_on_norms_and_biases():
    import keras

    def run(optimizer_cls):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.LayerNormalization()])
        optimizer = optimizer_cls(learning_rate=1e-2, weight_decay=0.1, epsilon=1e-6, global_clipnorm=1.0)
        optimizer.exclude_from_weight_decay(var_names=optimization.NO_DECAY_VARIABLES)
        model.compile(optimizer=optimizer, loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
        model.fit(x, np.ones((16, 3), "float32"), epochs=3, batch_size=8, verbose=0)
        return [w.numpy() for w in model.weights]

    ours, reference = run(optimization.FusedAdamW), run(keras.optimizers.AdamW)
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    optimizer = optimization.make_optimizer(1e-4, 100, 0.1, 0.01, 1.0)
    layer = keras.layers.LayerNormalization()
    dense = keras.layers.Dense(2)
    layer.build((None, 4))
    dense.build((None, 4))
    decayed = {v.name for v in [*layer.weights, *dense.weights] if optimizer._use_weight_decay(v)}
    assert decayed == {"kernel"}


def _twenty_steps(optimizer_cls, dtype: str, policy: str | None = None, clip: float | None = 0.5):
    """Weights before and after 20 steps of ``optimizer_cls`` on ``adamw_case``'s model (``policy``: the global
    dtype policy instead of ``dtype``, with a float32 head), and the optimizer."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy or dtype)
    try:
        model = adamw_case.model(head_dtype=dtype if policy is None else "float32")
        model.compile(optimizer=adamw_case.optimizer(optimizer_cls, clip), loss="mse")
        x, y = adamw_case.data(dtype)
        before = [w.numpy().astype(np.float64) for w in model.trainable_weights]
        model.fit(x, y, epochs=1, batch_size=adamw_case.BATCH, shuffle=False, verbose=0)
        # Loss scaling skips the steps whose float16 gradients overflow, as Keras' own optimizer does.
        assert int(model.optimizer.iterations.numpy()) == adamw_case.STEPS or policy == "mixed_float16"
        return before, [w.numpy().astype(np.float64) for w in model.trainable_weights], model.optimizer
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("clip,apply", [(0.5, "xla"), (None, "xla"), (0.5, "raw"), (None, "raw")])
def test_fused_update_matches_keras_adamw_in_float64(clip, apply):
    """Within 1e-10: each constant rounded where Keras rounds it (``optimization._keras_constants``), and
    without clipping the embedding's second moment summing squared rows, as Keras' sparse update does."""
    import keras

    start, ours, optimizer = _twenty_steps(functools.partial(optimization.FusedAdamW, apply=apply), "float64", clip=clip)
    _, theirs, _ = _twenty_steps(keras.optimizers.AdamW, "float64", clip=clip)
    assert hasattr(optimizer, "_xla_update") == (apply == "xla")  # which one-replica path ran
    assert adamw_case.gaps(start, ours, theirs)["moved"] > 1e-2
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("policy", [None, "mixed_float16"])
def test_fused_update_matches_keras_adamw_in_float32_and_under_loss_scaling(policy):
    import keras

    start, ours, optimizer = _twenty_steps(optimization.FusedAdamW, "float32", policy)
    _, theirs, _ = _twenty_steps(keras.optimizers.AdamW, "float32", policy)
    if policy:
        assert type(optimizer).__name__ == "LossScaleOptimizer"
        assert int(optimizer.inner_optimizer.iterations.numpy()) > 10  # most steps were applied
    gaps = adamw_case.gaps(start, ours, theirs)
    assert gaps["moved"] > 1e-2 and gaps["apart"] <= 1e-5 * gaps["moved"], gaps



def _embedding_gradient(rows: int):
    """An embedding's gradient as TensorFlow gives it: a row per token (``rows`` of them) of a 50 x 4 table."""
    import tensorflow as tf

    seeded = np.random.default_rng(rows)
    return tf.IndexedSlices(tf.constant(seeded.normal(size=(rows, 4)), tf.float32),
                            tf.constant(seeded.integers(0, 50, rows), tf.int32), tf.constant([50, 4]))


def _updated_embedding(row_counts, apply: str):
    """``(optimizer, weights)`` after one clipped AdamW step per gradient of ``row_counts`` rows."""
    import tensorflow as tf

    embedding = tf.Variable(np.random.default_rng(0).normal(size=(50, 4)).astype("float32"))
    optimizer = optimization.FusedAdamW(learning_rate=1e-2, weight_decay=0.01, global_clipnorm=1.0, apply=apply)
    for rows in row_counts:
        optimizer.apply_gradients([(_embedding_gradient(rows), embedding)])
    return optimizer, embedding.numpy()


def test_the_compiled_update_compiles_per_row_step_not_per_batch_of_tokens():
    """An embedding's gradient has a row per token of the batch, a count length bucketing changes every step.
    Unpadded, each count compiled the whole update again (and mapped executable memory that a long run ran
    out of); padded to multiples of ``ROW_STEP``, counts within one step share one program, and the weights
    are Keras' own update's."""
    step = optimization.ROW_STEP
    counts = [3, 17, step - 1, step]
    compiled, weights = _updated_embedding(counts, "xla")
    assert compiled._xla_update.experimental_get_tracing_count() == 1
    assert _updated_embedding([*counts, step + 1], "xla")[0]._xla_update.experimental_get_tracing_count() == 2
    assert np.allclose(weights, _updated_embedding(counts, "keras")[1], rtol=0, atol=1e-6)
