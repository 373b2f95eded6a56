"""Turning TensorFlow's oneDNN kernels on where TensorFlow leaves them off, before TensorFlow loads.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported, and by its
own rule (``DefaultOneDnnPolicy`` in its ``port.cc``) turns oneDNN on only on CPUs
with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX. On the AVX2 CPUs this project
runs on, that leaves the plain Eigen kernels, and oneDNN's are faster, in
inference and in training (docs/BENCHMARKS.md, "Fine-tuning with TensorFlow's
oneDNN kernels on AVX2"). So every entry point that computes with
TensorFlow calls :func:`enable` before importing it, through
:func:`glue_tf.tf_startup.prepare`: training, ``evaluate``, ``predict``, the
service and the benchmarks' glue-tf processes. A value the user set is never
overridden (``TF_ENABLE_ONEDNN_OPTS=0`` turns it off). The line :func:`enable`
returns says what was chosen and why, for the run log.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from glue_tf.precision import Machine

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# The CPU flags (as /proc/cpuinfo names them) for which TensorFlow turns oneDNN on by itself.
TENSORFLOW_DEFAULT_ON = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
# oneDNN's fast x86 kernels need at least AVX2.
NEEDED = "avx2"


def enable(environ: MutableMapping[str, str], machine: Machine) -> str:
    """Sets ``TF_ENABLE_ONEDNN_OPTS=1`` in ``environ`` where TensorFlow would leave oneDNN off on ``machine``'s CPU.

    Returns one line for the run log saying whether oneDNN is on and why. Takes effect only
    before TensorFlow is imported, so :func:`glue_tf.tf_startup.prepare`, which checks that, is the
    caller that passes ``os.environ`` and the CPU it reads (:meth:`Machine.from_cpu`).
    """
    if VARIABLE in environ:
        state = "off" if environ[VARIABLE].strip() in ("0", "false", "False") else "on"
        return f"oneDNN {state}: {VARIABLE}={environ[VARIABLE]} was set"
    flags, arch = machine.cpu_flags, machine.arch
    default_on = sorted(flags & set(TENSORFLOW_DEFAULT_ON))
    if default_on:
        return f"oneDNN on: TensorFlow's default on a CPU with {', '.join(default_on)}"
    if arch in ("x86_64", "AMD64") and NEEDED in flags:
        environ[VARIABLE] = "1"
        return (f"oneDNN on: set by glue-tf ({VARIABLE}=1); TensorFlow leaves it off on this {NEEDED} CPU "
                "without AVX512-VNNI/BF16 or AMX, where its kernels are slower")
    return f"oneDNN: TensorFlow's default on this {arch} CPU (no {NEEDED} flag seen)"


def is_on() -> bool:
    """Whether the imported TensorFlow runs its oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
