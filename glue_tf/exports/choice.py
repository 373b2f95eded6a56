"""Which of an export's signatures to run where the model runs, chosen without labels.

An export holds up to three signatures (:mod:`glue_tf.exports.signatures`) and, in its
``metadata.json``, what the export machine measured for each: speed and dev
score. The machine that serves or predicts with it may differ (no bf16 units,
another CPU), and at boot it has no labels to measure with, so the choice is a
rule over those figures and this :class:`~glue_tf.precision.Machine` (:func:`choose`):

- bfloat16 only where this machine has bf16 units *and* the export machine had
  them too, and measured bf16 within :data:`BF16_TOLERANCE` points of float32's
  dev score and faster than the best float32 path (emulated bf16 is slow, so a
  bf16 figure from a machine without units says nothing);
- else the compiled float32 signature where it was measured at least
  :data:`COMPILED_MARGIN` times as fast as ``serving_default`` (it pays its
  compiles at every load, and a few hundred timed examples are noisy), unless the export
  machine timed them with oneDNN off and oneDNN is on here: on an AVX2 CPU,
  TensorFlow leaves oneDNN off (training), and with it on (inference,
  :mod:`glue_tf.onednn`) the plain kernels catch up with XLA, so that lead was
  measured against kernels this process does not run;
- else ``serving_default``, which runs anywhere (an export written before the
  signatures were measured always gets it).

``GLUE_TF_PRECISION`` (the service; the default of ``--precision`` for
``glue-tf evaluate`` and ``predict``) overrides the rule: ``float32`` skips
bfloat16, ``bfloat16`` insists on it; ``float16``, a word of the shared
vocabulary (:mod:`glue_tf.precision`), names no signature an export has. The
choice and its reason go to the log.
"""

from __future__ import annotations

from glue_tf.exports import signatures
from glue_tf.precision import Machine, PrecisionError, bf16_support, parse

BF16_TOLERANCE = 0.3  # dev-score points bf16 may lose against float32 and still be chosen
COMPILED_MARGIN = 1.1  # how many times serving_default's speed the compiled signature must have shown


def _figure(measured: dict, name: str, key: str) -> float | None:
    value = (measured.get(name) or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _float32(metadata: dict, available, machine: Machine) -> tuple[str, str]:
    """The float32 rule: the compiled signature where it was measured clearly faster than ``serving_default``."""
    measured = metadata["signatures"]
    default_speed = _figure(measured, signatures.DEFAULT, "examples_per_second")
    compiled_speed = _figure(measured, signatures.COMPILED, "examples_per_second")
    if signatures.COMPILED not in available or signatures.COMPILED not in measured:
        return signatures.DEFAULT, f"the export has no {signatures.COMPILED} signature"
    if default_speed is None or compiled_speed is None:
        return signatures.DEFAULT, "the export's signatures were not timed (exported without dev examples)"
    timed = f"({compiled_speed:.0f} against {default_speed:.0f} examples/s on the export machine)"
    if compiled_speed < COMPILED_MARGIN * default_speed:
        return signatures.DEFAULT, f"{signatures.COMPILED} was not {COMPILED_MARGIN:g}x as fast {timed}"
    if (metadata.get("measured_on") or {}).get("onednn") is False and machine.onednn:
        return signatures.DEFAULT, (f"{signatures.COMPILED} won {timed} against kernels without oneDNN, "
                                        "and oneDNN is on here")
    return signatures.COMPILED, f"compiled float32 was faster {timed}"


def _bf16_refusal(metadata: dict, available, machine: Machine) -> str | None:
    """Why bfloat16 must not be chosen automatically; None where every condition holds."""
    measured = metadata["signatures"]
    if signatures.BFLOAT16 not in available or signatures.BFLOAT16 not in measured:
        return f"the export has no {signatures.BFLOAT16} signature"
    bf16_units, why = bf16_support(machine)
    if not bf16_units:
        return why
    if not (metadata.get("measured_on") or {}).get("bf16_units"):
        return "the export machine had no bf16 units, so its bf16 figures say nothing"
    bf16_score = _figure(measured, signatures.BFLOAT16, "dev_score")
    float32_score = _figure(measured, signatures.DEFAULT, "dev_score")
    if bf16_score is None or float32_score is None:
        return "no dev score was measured at export"
    if bf16_score < float32_score - BF16_TOLERANCE:
        return f"bf16 lost {float32_score - bf16_score:.2f} dev points (more than {BF16_TOLERANCE})"
    bf16_speed = _figure(measured, signatures.BFLOAT16, "examples_per_second")
    float32_paths = [name for name in (signatures.DEFAULT, signatures.COMPILED) if name in available]
    best = max((_figure(measured, name, "examples_per_second") or 0.0 for name in float32_paths), default=0.0)
    if bf16_speed is None or bf16_speed <= best:
        return f"bf16 was no faster than float32 ({bf16_speed or 0:.0f} against {best:.0f} examples/s)"
    return None


def choose(metadata: dict, available, machine: Machine, requested: str = "auto",
           setting: str = "--precision") -> tuple[str, str]:
    """``(signature name, reason)``: the signature to run on ``machine`` and why, in one sentence for the log.

    ``metadata``: the export's ``metadata.json``; ``available``: the names of its
    loaded signatures; ``requested``: a precision of :mod:`glue_tf.precision`'s
    vocabulary (``setting`` names where it came from, for the error).
    """
    requested = parse(requested, setting)
    available = set(available)
    if requested in ("bfloat16", "float16"):
        return _forced(requested, available, setting)
    measured = metadata.get("signatures")
    if not isinstance(measured, dict):
        return signatures.DEFAULT, (f"{signatures.DEFAULT}: the export records no measured signatures "
                                    "(written before they were measured)")
    name, why = _float32(metadata, available, machine)
    if requested == "float32":
        return name, f"{name}: float32 requested ({setting}); {why}"
    refusal = _bf16_refusal(metadata, available, machine)
    if refusal is None:
        return signatures.BFLOAT16, (
            f"{signatures.BFLOAT16}: this machine and the export machine have bf16 units, and bf16 kept the dev "
            f"score within {BF16_TOLERANCE} points at "
            f"{_figure(measured, signatures.BFLOAT16, 'examples_per_second'):.0f} examples/s")
    return name, f"{name}: {why}; not bfloat16: {refusal}"


def _forced(requested: str, available: set, setting: str) -> tuple[str, str]:
    """The signature computing in ``requested``, asked for by name: run even where it is emulated."""
    named = [name for name in signatures.NAMES if signatures.PRECISION[name] == requested and name in available]
    if not named:
        kept = [name for name in signatures.NAMES if signatures.PRECISION[name] == requested]
        missing = f"no {kept[0]} signature" if kept else f"no {requested} signature (exports have none)"
        raise PrecisionError(f"{setting}={requested}: this export has {missing} (it has "
                             f"{', '.join(sorted(available))}); re-export it or ask for float32 or auto")
    return named[0], f"{named[0]}: {requested} requested ({setting})"
