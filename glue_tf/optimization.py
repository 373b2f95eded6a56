"""AdamW with linear warm-up and linear decay to zero, as BERT fine-tuning uses."""

from __future__ import annotations

import keras

# LayerNorm scales/offsets and biases get no weight decay (BERT's recipe).
NO_DECAY_VARIABLES = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="glue_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.cast(max(self.warmup_steps, 1), "float32")
        decay = keras.ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        rising = self.peak * step / warmup
        falling = self.peak * keras.ops.maximum(0.0, (self.total_steps - step) / decay)
        return keras.ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def _handle(variable):
    """The resource handle of a tf.Variable, or of the tf.Variable inside a Keras one."""
    return variable.handle if hasattr(variable, "handle") else variable.value.handle


@keras.saving.register_keras_serializable(package="glue_tf")
class FusedAdamW(keras.optimizers.AdamW):
    """AdamW whose Adam step is TensorFlow's fused ``ResourceApplyAdam`` kernel.

    Same arithmetic as Keras' AdamW (the update is identical to the last bit in
    a side-by-side check), but one multi-threaded pass over each variable
    instead of half a dozen element-wise ops: the optimizer step of a MiniLM
    (22M parameters, most of them the word embeddings) takes about half as long on CPU.
    Falls back to Keras' own step on other backends and for AMSGrad.
    """

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):  # embeddings: Adam's moments decay on every row anyway
            gradient = tf.convert_to_tensor(gradient)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def make_optimizer(learning_rate: float, total_steps: int, warmup_fraction: float, weight_decay: float, clip_norm: float):
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(round(total_steps * warmup_fraction)))
    optimizer = FusedAdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        epsilon=1e-6,
        global_clipnorm=clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_VARIABLES)
    return optimizer
