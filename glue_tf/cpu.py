"""What this machine's CPU reports in ``/proc/cpuinfo``: its feature flags and model name.

The one reader of that file. The code that decides on the CPU (the precision
rule's bf16 units, the oneDNN switch, the XLA cache's per-CPU folder) takes a
:class:`glue_tf.precision.Machine`, which :meth:`~glue_tf.precision.Machine.from_cpu`
builds from here once where a process starts, so tests describe their CPU as a
``Machine`` instead of a file. Off Linux both are empty, and callers fall back to
their defaults.
"""

from __future__ import annotations

CPUINFO = "/proc/cpuinfo"


def _field(name: str) -> str | None:
    try:
        with open(CPUINFO, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ...); empty where they cannot be read."""
    return set((_field("flags") or "").split())


def model_name() -> str | None:
    """The CPU's model name (``AMD EPYC``), or None."""
    return _field("model name")
