"""Choosing the Keras dtype policy: ``auto`` picks bfloat16 where the hardware has it."""

from __future__ import annotations

import os

POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(requested: str, gpus: list | None = None, cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """Returns ``(policy, reason)``: the policy to use and why, for the run log."""
    if requested not in POLICIES:
        raise ValueError(f"--precision must be one of {', '.join(POLICIES)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    if gpus is None:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        import tensorflow as tf

        capabilities = [
            tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) for gpu in gpus
        ]
        if all(cap >= (8, 0) for cap in capabilities):
            return "mixed_bfloat16", f"auto: GPUs with compute capability {min(capabilities)} support bfloat16"
        return "float32", f"auto: GPU compute capability {min(capabilities)} lacks bfloat16"
    flags = _cpu_flags(cpuinfo) & set(_CPU_BF16_FLAGS)
    if flags:
        return "mixed_bfloat16", f"auto: CPU reports {', '.join(sorted(flags))}"
    arch = os.uname().machine
    return "float32", f"auto: CPU ({arch}) reports neither {' nor '.join(_CPU_BF16_FLAGS)}"
