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


def _tf_variable(variable):
    """The tf.Variable inside a Keras variable (a tf.Variable as it is)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _keras_constants(optimizer, dtype) -> dict:
    """The update's constants in ``dtype``, each rounded where Keras' ``Adam``/``AdamW`` round it.

    Keras passes some hyperparameters through ``cast`` (a Python float becomes a float32
    tensor first) and others straight into an op with a float64 tensor (kept exact).
    In float64 the difference is 1e-8 relative per step, so the fused update takes each
    one Keras' way: the betas of the bias corrections and the weight decay rate through
    float32 (``ops.cast``, ``tf.cast``), ``1 - beta`` of the moments and epsilon exact.
    The learning rate is float32 already (a float32 variable or the schedule's value).
    """
    import tensorflow as tf

    return {"beta_1": tf.cast(optimizer.beta_1, dtype), "beta_2": tf.cast(optimizer.beta_2, dtype),
            "one_minus_beta_1": tf.constant(1 - optimizer.beta_1, dtype),
            "one_minus_beta_2": tf.constant(1 - optimizer.beta_2, dtype),
            "epsilon": tf.constant(optimizer.epsilon, dtype)}


def _adamw_pass(var, m, v, grad, square, lr, decay, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    """One variable's decoupled weight decay and Adam step, in Keras' AdamW order of operations
    (decay on the old weights, then the moments, then the step), written so XLA makes it one loop."""
    m_new = m + (grad - m) * one_minus_beta_1
    v_new = v + (square - v) * one_minus_beta_2
    decayed = var - var * decay * lr if decay is not None else var
    import tensorflow as tf

    return decayed - (m_new * alpha) / (tf.sqrt(v_new) + epsilon), m_new, v_new


def _clip_by_global_norm(grads, clip_norm: float):
    """Keras' global-norm clipping (``keras.optimizers`` ``clip_by_global_norm``): a non-finite norm makes
    every gradient NaN, as there, so a loss-scaling optimizer's overflow check still sees it."""
    import tensorflow as tf

    # An embedding's gradient (IndexedSlices) counts by its slices, a row once per occurrence, as in Keras;
    # scaled, it comes out dense, as Keras' ``v * scale`` makes it.
    values = [g.values if isinstance(g, tf.IndexedSlices) else g for g in grads]
    norm = tf.sqrt(tf.reduce_sum(tf.stack([tf.reduce_sum(tf.square(g)) for g in values])))
    scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm) + (norm - norm)
    return [tf.convert_to_tensor(g) * tf.cast(scale, g.dtype) for g in grads]


ROW_STEP = 1024  # an embedding gradient's rows are padded to a multiple of this before the compiled update


def _rows_in_steps(grad):
    """An embedding's gradient (IndexedSlices) with zero rows appended up to a multiple of :data:`ROW_STEP`.

    It holds a row per token of the batch, a count that length bucketing changes every step, and XLA
    compiles a program per input shape: unpadded, a fine-tuning run compiled the whole update again at
    nearly every step, and each program maps executable memory that is never given back, until the process
    reached the kernel's map limit (``vm.max_map_count``) and died within the hour. In steps, a run
    compiles a few programs (batch x max length / :data:`ROW_STEP`). Zero rows at index 0 change neither
    the summed gradient, nor the squares Adam sums, nor the global norm. Dense gradients pass as they are.
    """
    import tensorflow as tf

    if not isinstance(grad, tf.IndexedSlices):
        return grad
    rows = tf.shape(grad.values, out_type=tf.int32)[0]
    padding = (ROW_STEP - rows % ROW_STEP) % ROW_STEP
    values = tf.pad(grad.values, [[0, padding], [0, 0]])
    return tf.IndexedSlices(values, tf.pad(grad.indices, [[0, padding]]), grad.dense_shape)


def _dense_and_square(grad):
    """A gradient as a dense tensor, and what Adam's second moment takes of it.

    An unclipped embedding gradient (IndexedSlices) holds a row per occurrence of a token;
    Keras' Adam squares those rows before they are summed, so where a token occurs twice
    its second moment takes the sum of the squares. Kept, so the update stays Keras' own.
    (Clipped, the gradient is dense already, and Keras squares the sum.)
    """
    import tensorflow as tf

    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad), tf.convert_to_tensor(
            tf.IndexedSlices(tf.square(grad.values), grad.indices, grad.dense_shape))
    return grad, tf.square(grad)


@keras.saving.register_keras_serializable(package="glue_tf")
class FusedAdamW(keras.optimizers.AdamW):
    """Keras' AdamW with global-norm clipping, decoupled weight decay and the Adam moments in one pass
    per variable.

    Keras runs the clipped AdamW update as separate passes over every weight: the
    clip's multiply, the decay's multiply and subtract, then the moments and the step.
    On a CPU each pass streams the whole model (22M weights for MiniLM, most of them
    the word embeddings) through memory, so the passes, not the arithmetic, cost.

    - One replica, ``apply="xla"`` (the default): the whole update is one XLA-compiled function inside the train
      step (the global norm, then per variable one fused loop that reads the
      gradient, weight and both moments once and writes them once).
    - Several replicas, or ``apply="raw"``: Keras clips each replica's gradients before they are summed,
      so the clip stays Keras'; after the all-reduce, decay and Adam run as two raw
      kernels per variable (``ResourceApplyGradientDescent`` on the weight itself,
      then ``ResourceApplyAdam``), on each device.

    Same arithmetic as Keras' ``AdamW`` (``tests/test_optimization.py`` holds both paths to
    1e-10 in float64; in float32 the XLA apply to 1e-5 of the weights' movement, a bound
    the raw kernels only just miss, so they are not the one-replica default). Falls back to Keras' own update on other backends and for
    AMSGrad, EMA and gradient accumulation.
    """

    APPLIES = ("xla", "raw", "keras")

    def __init__(self, *args, apply: str = "xla", **kwargs):
        """``apply``: on one replica, ``"xla"`` (the compiled apply), ``"raw"`` (the raw kernels, as on several
        replicas) or ``"keras"`` (Keras' own passes: the reference the others are timed and tested against)."""
        if apply not in self.APPLIES:
            raise ValueError(f"FusedAdamW(apply={apply!r}): expected one of {', '.join(self.APPLIES)}")
        super().__init__(*args, **kwargs)
        self.apply_mode = apply

    def get_config(self):
        return {**super().get_config(), "apply": self.apply_mode}

    def _fused_here(self) -> bool:
        return (self.apply_mode != "keras" and keras.backend.backend() == "tensorflow" and not self.amsgrad and not self.use_ema
                and not self.gradient_accumulation_steps and not self.clipnorm and not self.clipvalue)

    def _backend_apply_gradients(self, grads, trainable_variables):
        import tensorflow as tf

        if not self._fused_here():
            return super()._backend_apply_gradients(grads, trainable_variables)
        several = tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1
        if several or self.apply_mode == "raw":
            return super()._backend_apply_gradients(grads, trainable_variables)  # update_step below: raw kernels
        self._xla_apply(grads, [_tf_variable(v) for v in trainable_variables])

    def _apply_weight_decay(self, variables):
        if not self._fused_here():
            super()._apply_weight_decay(variables)
        # else: applied inside update_step, in the same pass as Adam

    def _decay_rate(self, variable):
        return self.weight_decay if self.weight_decay and self._use_weight_decay(variable) else None

    def _xla_apply(self, grads, variables):
        import tensorflow as tf

        if not hasattr(self, "_xla_update"):
            self._xla_update = tf.function(self._update_all, jit_compile=True, autograph=False)
        moments = [_tf_variable(self._momentums[self._get_variable_index(v)]) for v in variables]
        velocities = [_tf_variable(self._velocities[self._get_variable_index(v)]) for v in variables]
        decays = tuple(self._decay_rate(v) for v in variables)
        self._xla_update(variables, moments, velocities, [_rows_in_steps(g) for g in grads],
                         tf.convert_to_tensor(self.learning_rate), tf.convert_to_tensor(self.iterations), decays)

    def _update_all(self, variables, moments, velocities, grads, learning_rate, iterations, decays):
        """The whole update, compiled by XLA: global-norm clipping, then each variable's fused pass."""
        import tensorflow as tf

        if self.global_clipnorm and self.global_clipnorm > 0:
            grads = _clip_by_global_norm(grads, self.global_clipnorm)
        scalars = {}  # per dtype, once: built per variable, they cost the first trace 1.5 s (py-spy)
        for var, m, v, grad, decay in zip(variables, moments, velocities, grads, decays):
            dtype = var.dtype
            if dtype not in scalars:
                scalars[dtype] = self._step_scalars(dtype, learning_rate, iterations)
            lr, alpha, constants = scalars[dtype]
            grad, square = _dense_and_square(tf.cast(grad, dtype))
            new_var, new_m, new_v = _adamw_pass(
                var, m, v, grad, square, lr, None if decay is None else tf.cast(decay, dtype), alpha,
                constants["one_minus_beta_1"], constants["one_minus_beta_2"], constants["epsilon"])
            m.assign(new_m)
            v.assign(new_v)
            var.assign(new_var)

    def _step_scalars(self, dtype, learning_rate, iterations):
        """``(lr, alpha, constants)`` in ``dtype`` for this step: the learning rate, Adam's bias-corrected
        step size, and :func:`_keras_constants`."""
        import tensorflow as tf

        constants = _keras_constants(self, dtype)
        lr, step = tf.cast(learning_rate, dtype), tf.cast(iterations + 1, dtype)
        alpha = lr * tf.sqrt(1 - constants["beta_2"]**step) / (1 - constants["beta_1"]**step)
        return lr, alpha, constants

    def update_step(self, gradient, variable, learning_rate):
        """One variable's decay and Adam step as two raw kernels (the multi-replica path)."""
        if not self._fused_here():
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        decay = self._decay_rate(variable)
        if decay is not None:  # var -= (lr * decay) * var, one kernel
            tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=lr * tf.cast(decay, dtype),
                                                    delta=tf.convert_to_tensor(variable), use_locking=False)
        if isinstance(gradient, tf.IndexedSlices):  # an embedding: Keras' sparse second moment (_dense_and_square)
            return super().update_step(gradient, variable, learning_rate)
        step = tf.cast(self.iterations + 1, dtype)
        constants = _keras_constants(self, dtype)
        index = self._get_variable_index(variable)
        # The kernel takes 1 - beta from ``beta1``/``beta2``: the exact betas here, the rounded ones in the powers.
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(constants["beta_1"], step), beta2_power=tf.pow(constants["beta_2"], step), lr=lr,
            beta1=tf.constant(self.beta_1, dtype), beta2=tf.constant(self.beta_2, dtype),
            epsilon=constants["epsilon"], grad=tf.cast(gradient, dtype), use_locking=False,
        )


def make_optimizer(learning_rate: float, total_steps: int, warmup_fraction: float, weight_decay: float, clip_norm: float,
                   apply: str = "xla"):
    """glue-tf's AdamW; ``apply`` picks how :class:`FusedAdamW` runs the update (``TrainConfig.optimizer_apply``)."""
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(round(total_steps * warmup_fraction)))
    optimizer = FusedAdamW(
        apply=apply,
        learning_rate=schedule,
        weight_decay=weight_decay,
        epsilon=1e-6,
        global_clipnorm=clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_VARIABLES)
    return optimizer
