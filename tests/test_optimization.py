import numpy as np
import pytest

from glue_tf import optimization


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
