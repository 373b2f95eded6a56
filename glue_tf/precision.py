"""Choosing the Keras dtype policy: ``auto`` picks bfloat16 where the hardware has it."""

from __future__ import annotations

import os

from glue_tf import cpu

POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def bf16_support(gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> tuple[bool, str]:
    """Whether this machine computes bfloat16 in hardware, and why, in words for a log line.

    GPUs (when TensorFlow sees any) need compute capability 8.0 or more, all of
    them; a CPU needs ``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``.
    Elsewhere bfloat16 runs emulated, slower than float32. The one test of
    bfloat16 hardware: training's ``--precision auto`` and the choice of a
    serving signature (``glue_tf.signature_choice``) both ask it.
    """
    if gpus is None:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        import tensorflow as tf

        capabilities = [
            tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) for gpu in gpus
        ]
        if all(cap >= (8, 0) for cap in capabilities):
            return True, f"GPUs with compute capability {min(capabilities)} support bfloat16"
        return False, f"GPU compute capability {min(capabilities)} lacks bfloat16"
    flags = cpu.flags(cpuinfo) & set(_CPU_BF16_FLAGS)
    if flags:
        return True, f"CPU reports {', '.join(sorted(flags))}"
    return False, f"CPU ({os.uname().machine}) reports neither {' nor '.join(_CPU_BF16_FLAGS)}"


def bf16_units(gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> bool:
    """True where this machine has bfloat16 units (:func:`bf16_support` without the reason)."""
    return bf16_support(gpus, cpuinfo)[0]


def resolve(requested: str, gpus: list | None = None, cpuinfo: str = cpu.CPUINFO) -> tuple[str, str]:
    """Returns ``(policy, reason)``: the policy to use and why, for the run log."""
    if requested not in POLICIES:
        raise ValueError(f"--precision must be one of {', '.join(POLICIES)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    supported, why = bf16_support(gpus, cpuinfo)
    return ("mixed_bfloat16" if supported else "float32"), f"auto: {why}"
