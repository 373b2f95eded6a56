"""TensorFlow's start-up switches, set before it loads, and the lines that say what was chosen.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` (:mod:`glue_tf.onednn`) and
``TF_XLA_FLAGS`` (:mod:`glue_tf.xla_cache`) once, when it is imported. So every
entry point that computes with TensorFlow calls :func:`prepare` before importing
it: the CLI's computing commands, the gunicorn master (its workers import
TensorFlow after the fork) and the benchmarks' glue-tf processes. This is the one
place that knows whether it came too late, and it keeps the lines it chose, reasons
included, for the run log (:func:`lines`). Being where a process starts, it also
owns what the switches are decided on: the process environment and this CPU
(:meth:`glue_tf.precision.Machine.from_cpu`, which does not load TensorFlow), passed
to :func:`glue_tf.onednn.enable` and :func:`glue_tf.xla_cache.enable`.
"""

from __future__ import annotations

import os
import sys

from glue_tf import onednn, xla_cache
from glue_tf.precision import Machine

# What prepare() chose in this process: (the oneDNN line, the XLA cache line).
_chosen: tuple[str, str] | None = None


def prepare() -> tuple[str, str]:
    """Sets both switches in ``os.environ`` unless TensorFlow is already loaded; returns their log lines."""
    global _chosen
    if _chosen is None:
        if "tensorflow" in sys.modules:
            late = "TensorFlow was loaded before glue-tf could set it"
            _chosen = (f"{_onednn_state()} ({late}; its own default applies)",
                       f"{xla_cache.describe(os.environ)} ({late})")
        else:
            machine = Machine.from_cpu()
            _chosen = (onednn.enable(os.environ, machine), xla_cache.enable(os.environ, machine))
    return _chosen


def lines() -> tuple[str, str]:
    """What :func:`prepare` chose here; without it (glue-tf used as a library), what TensorFlow runs."""
    return _chosen or (f"{_onednn_state()} (TensorFlow's own default; glue-tf did not choose)",
                       xla_cache.describe(os.environ))


def _onednn_state() -> str:
    return f"oneDNN {'on' if onednn.is_on() else 'off'}"
