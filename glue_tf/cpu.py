"""What this machine's CPU reports in ``/proc/cpuinfo``: its feature flags and model name.

The one reader of that file: the precision rule (bf16 units), the oneDNN switch
(AVX2 and the flags TensorFlow turns oneDNN on for) and the figures an export
records about the machine that measured it all ask here. Off Linux both are
empty, and callers fall back to their defaults.
"""

from __future__ import annotations

CPUINFO = "/proc/cpuinfo"


def _field(name: str, cpuinfo: str) -> str | None:
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def flags(cpuinfo: str = CPUINFO) -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ...); empty where they cannot be read."""
    return set((_field("flags", cpuinfo) or "").split())


def model_name(cpuinfo: str = CPUINFO) -> str | None:
    """The CPU's model name (``AMD EPYC``), or None."""
    return _field("model name", cpuinfo)
