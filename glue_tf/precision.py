"""One precision vocabulary, and the :class:`Machine` a precision is decided on.

Training (the Keras dtype policy), the export (the policy each signature computes
in) and serving (``GLUE_TF_PRECISION``, the signature a version runs) all speak
of precision, so they share its words here: ``auto``, ``float32``, ``bfloat16``
and ``float16`` (:data:`WORDS`). The spellings glue-tf accepted before (Keras'
``mixed_bfloat16`` and ``mixed_float16``) and the usual short ones stay accepted
as :data:`ALIASES`, so no command line or deployment breaks. This module imports
no training code, KerasHub or tfds: the service imports it.

Whether bfloat16 pays is a fact about the hardware, read once where a process
starts (:meth:`Machine.detect`) and passed to the code that decides (``auto``
here, the signature choice of :mod:`glue_tf.exports.choice`), so that a test
describes the machine it means instead of patching what the code would read.
``auto`` picks bfloat16 where the hardware has it; where it does not, float16
with loss scaling on GPUs and float32 on CPUs. XLA compiles the train step on
GPUs by default, and not on CPUs (:func:`xla_default`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform

from glue_tf import cpu
from glue_tf.errors import GlueTfError

WORDS = ("auto", "float32", "bfloat16", "float16")
# The Keras dtype policy each word computes under (auto has none until decided).
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# Spellings accepted before the vocabulary was one, and short ones: each means the word it maps to.
ALIASES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16", "fp32": "float32", "bf16": "bfloat16",
           "fp16": "float16"}
SPELLINGS = (*WORDS, *ALIASES)
VARIABLE = "GLUE_TF_PRECISION"
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


class PrecisionError(GlueTfError, ValueError):
    """A precision that is none of :data:`SPELLINGS`, or one the export cannot give."""


def word(value: str) -> str:
    """The word of :data:`WORDS` that ``value`` spells (an alias, any case); else ``ValueError`` saying what is
    expected. Every command and setting reads precision through here: the CLI's flags (:func:`flag_value`),
    ``GLUE_TF_PRECISION`` (:func:`from_environment`, the service's settings) and the signature choice."""
    spelled = value.strip().lower()
    found = ALIASES.get(spelled, spelled)
    if found not in WORDS:
        raise ValueError(f"expected one of {', '.join(WORDS)} (or the older {', '.join(ALIASES)})")
    return found


def parse(value: str, setting: str = "--precision") -> str:
    """:func:`word`, its error a ``PrecisionError`` naming ``setting`` (where the value came from)."""
    try:
        return word(value)
    except ValueError as error:
        raise PrecisionError(f"{setting}={value!r}: {error}") from None


def flag_value(value: str) -> str:
    """:func:`word` as argparse's ``type``: a bad value is a usage error saying what is expected."""
    import argparse

    try:
        return word(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None


def keras_policy(decided: str) -> str:
    """The Keras dtype policy of a decided precision (``bfloat16`` -> ``mixed_bfloat16``)."""
    return KERAS_POLICIES[parse(decided)]


def from_environment() -> str:
    """``GLUE_TF_PRECISION`` parsed, or ``auto`` where it is unset or empty."""
    return parse(os.environ.get(VARIABLE) or "auto", VARIABLE)


@dataclasses.dataclass(frozen=True)
class Gpu:
    """A GPU TensorFlow sees: its name and CUDA compute capability ``(major, minor)``."""

    name: str
    capability: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Machine:
    """What precision decisions depend on: the CPU, its flags, oneDNN and the GPUs.

    ``onednn`` is None where TensorFlow was not asked (:meth:`from_cpu`, before it
    loads). Example: ``Machine(cpu_flags=frozenset({"avx512_bf16"}), onednn=True).bf16_units``.
    """

    cpu_model: str | None = None
    cpu_flags: frozenset[str] = frozenset()
    arch: str = "x86_64"
    onednn: bool | None = None
    gpus: tuple[Gpu, ...] = ()

    @classmethod
    def from_cpu(cls) -> "Machine":
        """This machine's CPU as ``/proc/cpuinfo`` reports it, without loading TensorFlow (no GPUs, oneDNN unknown)."""
        return cls(cpu_model=cpu.model_name(), cpu_flags=frozenset(cpu.flags()), arch=platform.machine())

    @classmethod
    def detect(cls) -> "Machine":
        """This machine, GPUs and oneDNN state included (imports TensorFlow); read once per process."""
        return _detected()

    @property
    def bf16_units(self) -> bool:
        """True where this machine computes bfloat16 in hardware (:func:`bf16_support`)."""
        return bf16_support(self)[0]


@functools.cache
def _detected() -> Machine:
    import tensorflow as tf

    from glue_tf import onednn

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(Gpu(details.get("device_name", "unknown GPU"), tuple(details.get("compute_capability", (0, 0)))))
    return dataclasses.replace(Machine.from_cpu(), onednn=onednn.is_on(), gpus=tuple(gpus))


def bf16_support(machine: Machine) -> tuple[bool, str]:
    """Whether ``machine`` computes bfloat16 in hardware, and why, in words for a log line.

    GPUs (where there are any) need compute capability 8.0 or more, all of them;
    a CPU needs ``amx_bf16`` or ``avx512_bf16``. Elsewhere bfloat16 runs
    emulated, slower than float32. The one test of bfloat16 hardware: training's
    ``auto`` and the choice of a serving signature both ask it.
    """
    if machine.gpus:
        lowest = min(gpu.capability for gpu in machine.gpus)
        if lowest >= (8, 0):
            return True, f"GPUs with compute capability {lowest} support bfloat16"
        return False, f"GPU compute capability {lowest} lacks bfloat16"
    flags = machine.cpu_flags & set(CPU_BF16_FLAGS)
    if flags:
        return True, f"CPU reports {', '.join(sorted(flags))}"
    return False, f"CPU ({machine.arch}) reports neither {' nor '.join(CPU_BF16_FLAGS)}"


def resolve(requested: str, machine: Machine) -> tuple[str, str]:
    """``(Keras policy, reason)`` for a requested precision (any of :data:`SPELLINGS`), for the run log."""
    word = parse(requested)
    if word != "auto":
        return KERAS_POLICIES[word], "requested"
    supported, why = bf16_support(machine)
    if supported:
        return KERAS_POLICIES["bfloat16"], f"auto: {why}"
    if machine.gpus:  # every GPU computes float16; Keras scales the loss (compile's auto_scale_loss, glue_tf.loop)
        return KERAS_POLICIES["float16"], f"auto: {why}; float16 with loss scaling instead"
    return KERAS_POLICIES["float32"], f"auto: {why}"


def xla_default(requested: bool | None, machine: Machine, replicas: int = 1) -> tuple[bool, str]:
    """Whether the train step is XLA-compiled, and why: as requested, else on GPUs only; never over several replicas.

    TensorFlow cannot XLA-compile one step whose variables live on several devices, nor
    the optimizer's cross-replica merge inside a compiled function: Keras' ``fit`` fails
    the same way (keras-team/keras#18145, #17187), so several replicas train uncompiled.

    On CPUs it does not pay (docs/BENCHMARKS.md): with oneDNN on, the step is as
    fast without it; with oneDNN off, its gain is lost to the coarser width
    buckets it needs (a compile per batch width) and the compiles themselves.
    """
    if replicas > 1:
        ignored = "; --jit-compile ignored" if requested else ""
        return False, f"off over {replicas} replicas: TensorFlow cannot compile one step across devices{ignored}"
    if requested is not None:
        return requested, "requested"
    return (True, "auto: on GPUs") if machine.gpus else (False, "auto: off on CPUs, where it does not pay")
