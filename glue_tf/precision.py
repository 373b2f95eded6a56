"""Choosing the Keras dtype policy and XLA: ``auto`` picks bfloat16 where the hardware has it.

Where it does not: float16 with loss scaling on GPUs, float32 on CPUs. XLA compiles the
train step on GPUs by default, and not on CPUs (:func:`xla_default`).
"""

from __future__ import annotations

import os

from glue_tf import cpu

POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def bf16_support(gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> tuple[bool, str]:
    """Whether this machine computes bfloat16 in hardware, and why, in words for a log line.

    GPUs (when TensorFlow sees any) need compute capability 8.0 or more, all of
    them; a CPU needs ``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``.
    Elsewhere bfloat16 runs emulated, slower than float32. The one test of
    bfloat16 hardware: training's ``--precision auto`` and the choice of a
    serving signature (``glue_tf.signature_choice``) both ask it.
    """
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        capabilities = [_capability(gpu) for gpu in gpus]
        if all(cap >= (8, 0) for cap in capabilities):
            return True, f"GPUs with compute capability {min(capabilities)} support bfloat16"
        return False, f"GPU compute capability {min(capabilities)} lacks bfloat16"
    flags = cpu.flags(cpuinfo) & set(CPU_BF16_FLAGS)
    if flags:
        return True, f"CPU reports {', '.join(sorted(flags))}"
    return False, f"CPU ({os.uname().machine}) reports neither {' nor '.join(CPU_BF16_FLAGS)}"


def visible_gpus() -> list:
    """The GPUs TensorFlow sees (imports TensorFlow)."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _capability(gpu) -> tuple[int, int]:
    """A GPU's compute capability; ``gpus`` lists may also hold the ``(major, minor)`` tuples themselves."""
    if isinstance(gpu, tuple):
        return gpu
    import tensorflow as tf

    return tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))


def bf16_units(gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> bool:
    """True where this machine has bfloat16 units (:func:`bf16_support` without the reason)."""
    return bf16_support(gpus, cpuinfo)[0]


def resolve(requested: str, gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> tuple[str, str]:
    """Returns ``(policy, reason)``: the policy to use and why, for the run log."""
    if requested not in POLICIES:
        raise ValueError(f"--precision must be one of {', '.join(POLICIES)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    gpus = visible_gpus() if gpus is None else gpus
    supported, why = bf16_support(gpus, cpuinfo)
    if supported:
        return "mixed_bfloat16", f"auto: {why}"
    if gpus:  # every GPU computes float16; Keras scales the loss (compile's auto_scale_loss, glue_tf.loop)
        return "mixed_float16", f"auto: {why}; float16 with loss scaling instead"
    return "float32", f"auto: {why}"


def xla_default(requested: bool | None, gpus: list | None = None, replicas: int = 1) -> tuple[bool, str]:
    """Whether the train step is XLA-compiled, and why: as requested, else on GPUs only; never over several replicas.

    TensorFlow cannot XLA-compile one step whose variables live on several devices, nor
    the optimizer's cross-replica merge inside a compiled function: Keras' ``fit`` fails
    the same way (keras-team/keras#18145, #17187), so several replicas train uncompiled.

    On the CPUs measured here (docs/BENCHMARKS.md) it does not pay: with oneDNN on, the
    step is as fast without it; with oneDNN off, its gain is lost to the coarser width
    buckets it needs (a compile per batch width) and the compiles themselves.
    """
    if replicas > 1:
        ignored = "; --jit-compile ignored" if requested else ""
        return False, f"off over {replicas} replicas: TensorFlow cannot compile one step across devices{ignored}"
    if requested is not None:
        return requested, "requested"
    gpus = visible_gpus() if gpus is None else gpus
    return (True, "auto: on GPUs") if gpus else (False, "auto: off on CPUs, where it does not pay")
