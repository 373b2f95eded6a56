"""What this machine's CPU reports in ``/proc/cpuinfo``: its feature flags and model name.

The one reader of that file. The code that decides on the CPU (the precision
rule's bf16 units, the oneDNN switch, the XLA cache's per-CPU folder) takes a
:class:`glue_tf.precision.Machine`, which :meth:`~glue_tf.precision.Machine.from_cpu`
builds from here once where a process starts, so tests describe their CPU as a
``Machine`` instead of a file. Off Linux both are empty, and callers fall back to
their defaults.
"""

from __future__ import annotations

import os

CPUINFO = "/proc/cpuinfo"
# The flags that decide how fast, and in which precision, this CPU trains: named beside a figure it produced.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _field(name: str) -> str | None:
    """The first CPU's ``name`` field (exactly that key: ``model`` is not ``model name``)."""
    try:
        with open(CPUINFO, encoding="utf-8") as handle:
            for line in handle:
                key, colon, value = line.partition(":")
                if colon and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ...); empty where they cannot be read."""
    return set((_field("flags") or "").split())


def model_name() -> str | None:
    """The CPU's model name (``AMD EPYC``), or None."""
    return _field("model name")


def describe() -> dict:
    """This CPU as a figure's record names it. Guests under KVM may all read ``AMD EPYC``, so the family and
    model numbers, and the vector flags, tell an AVX2-only machine from one with bfloat16 units."""
    return {"cpu": model_name(), "family": _field("cpu family"), "model": _field("model"),
            "vector_flags": [f for f in VECTOR_FLAGS if f in flags()], "cores": os.cpu_count()}
