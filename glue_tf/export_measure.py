"""What the export machine measured for each signature: speed, dev score, compile seconds.

Where the model runs, :mod:`glue_tf.exports.choice` picks a signature without
labels, from these figures: compiled float32 only where it was faster than
``serving_default``, bfloat16 only where it held the float32 dev score and won.
So the export measures each signature of the SavedModel it just wrote, loaded
as a server loads it: first the compiled signature over every grid shape (the
seconds each first call took: the compile a version pays at warm-up), then each
signature on the dev examples, in length-sorted chunks of :data:`CHUNK` as
``glue-tf evaluate`` runs them, after one call that pays its start-up. At most
:data:`DEV_CAP` examples are measured, spread evenly over those given, so an
export stays cheap. An export machine without bf16 units does not time the
bfloat16 signature: emulated, it is several times slower than float32, and
the choice ignores bf16 figures from such a machine.

The timings depend on the machine and the model's shape, not on its weights, so
an export of a shape this machine has measured before reuses them
(:mod:`glue_tf.timing_cache`): it compiles nothing and only scores the float32
and bfloat16 signatures on the dev examples, since their scores depend on the weights.
"""

from __future__ import annotations

import time

import numpy as np

from glue_tf import metrics
from glue_tf.exports import signatures
from glue_tf.precision import Machine, keras_policy
from glue_tf.tasks import Task

DEV_CAP = 512
CHUNK = 64
# The Keras policy each signature computes under, as the metadata records it.
POLICIES = {name: keras_policy(word) for name, word in signatures.PRECISION.items()}
NO_BF16_UNITS = "the export machine has no bf16 units: its bf16 figures would not count where the model runs"
REUSED_COMPILED = "timings reused: not run on the dev examples (it computes serving_default's float32 numbers)"


def measured_on(machine: Machine) -> dict:
    """The device the figures were measured on: ``{"device", "model", "bf16_units", "onednn"}``."""
    if machine.gpus:
        return {"device": "GPU", "model": machine.gpus[0].name, "bf16_units": machine.bf16_units,
                "onednn": machine.onednn}
    return {"device": "CPU", "model": machine.cpu_model or "unknown CPU", "bf16_units": machine.bf16_units,
            "onednn": machine.onednn}


def spread(examples: list[dict], cap: int = DEV_CAP) -> list[dict]:
    """At most ``cap`` of ``examples``, evenly spaced (a deterministic sample of every part of the split)."""
    if len(examples) <= cap:
        return list(examples)
    return [examples[i] for i in np.linspace(0, len(examples) - 1, cap).astype(int)]


def _columns(task: Task, examples: list[dict]) -> dict:
    import tensorflow as tf

    return {field: tf.constant([e[field] for e in examples], tf.string) for field in task.text_features}


def compile_seconds(signature, requests: list[dict], shapes: list[tuple[int, int]]) -> dict[str, float]:
    """Seconds of each warm-up request's first call, keyed by its grid shape (``"<batch>x<width>"``)."""
    import tensorflow as tf

    signature(**{field: tf.constant([], tf.string) for field in requests[0]})  # start-up, no compile: 0 rows
    seconds = {}
    for (batch, width), columns in zip(shapes, requests):
        started = time.perf_counter()
        signature(**{field: tf.constant(texts, tf.string) for field, texts in columns.items()})
        seconds[signatures.shape_key(batch, width)] = round(time.perf_counter() - started, 4)
    return seconds


def _run_sorted(signature, task: Task, examples: list[dict]) -> tuple[dict[str, np.ndarray], float]:
    """Every output of ``signature`` on ``examples`` (in their order), run as ``glue-tf evaluate`` runs them,
    and the seconds that took after one start-up call."""
    order = np.argsort([sum(len(e[f]) for f in task.text_features) for e in examples], kind="stable")
    signature(**_columns(task, examples[:1]))  # start-up
    outputs: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for start in range(0, len(order), CHUNK):
        rows = order[start : start + CHUNK]
        for key, value in signature(**_columns(task, [examples[r] for r in rows])).items():
            value = value.numpy()
            outputs.setdefault(key, np.zeros((len(examples), *value.shape[1:]), value.dtype))[rows] = value
    return outputs, time.perf_counter() - started


def _dev_score(task: Task, examples: list[dict], outputs: dict) -> float | None:
    """The task's score in points, the examples taken as each of its dev splits (MNLI: matched and
    mismatched pooled)."""
    labels = np.array([e["label"] for e in examples])
    per_split = dict.fromkeys(task.dev_splits, metrics.compute_metrics(
        task, labels, metrics.predictions_from_outputs(task, outputs)))
    return metrics.complete_score(task, metrics.score_components(task, per_split))


def speed_and_score(signature, task: Task, examples: list[dict]) -> tuple[float, float | None]:
    """``(examples_per_second, dev_score)`` of ``signature`` on labelled ``examples``."""
    outputs, seconds = _run_sorted(signature, task, examples)
    return round(len(examples) / seconds, 2), _dev_score(task, examples, outputs)


def _timed(name: str, loaded: dict, task: Task, examples: list[dict], reused: dict | None) -> dict:
    """A timed signature's speed and dev score: both measured, or the speed (and compile seconds) of
    ``reused`` timings and the dev score measured, since it depends on the weights. The compiled signature
    is not run at all then (its compiles are what reuse saves; it computes serving_default's float32 numbers)."""
    if reused is None:
        speed, score = speed_and_score(loaded[name], task, examples)
        return {"examples_per_second": speed, "dev_score": score}
    figures = dict(reused[name])
    if name == signatures.COMPILED:
        return {**figures, "dev_score": None, "not_measured": REUSED_COMPILED}
    return {**figures, "dev_score": _dev_score(task, examples, _run_sorted(loaded[name], task, examples)[0])}


def measure(loaded: dict, task: Task, requests: list[dict], max_seq_length: int,
            dev_examples: list[dict] | None, device: dict, reused: dict | None = None) -> dict:
    """The metadata's ``signatures``, ``measured_on`` and ``measured_dev_examples`` for a loaded export.

    ``loaded``: its signatures by name; ``requests``: its warm-up requests, one
    per shape of :func:`glue_tf.exports.signatures.grid_shapes` in that order; ``device``: the
    :func:`measured_on` record of this process's machine. Without ``dev_examples`` (None) nothing is
    timed: the figures are null, so no signature is chosen for a speed nobody measured. With an empty
    list only the compile seconds are measured. ``reused``: timings per signature that an export of the
    same shape measured on this machine (:mod:`glue_tf.timing_cache`): only dev scores are measured.
    """
    shapes = signatures.grid_shapes(max_seq_length)
    examples = spread(dev_examples or [])
    described = {}
    for name in signatures.NAMES:
        entry = {"precision": POLICIES[name], "compiled": name == signatures.COMPILED}
        if name == signatures.COMPILED:
            measure_compiles = dev_examples is not None and reused is None
            entry.update(widths=list(signatures.grid_widths(max_seq_length)), batch_sizes=list(signatures.BATCH_SIZES),
                         compile_seconds=compile_seconds(loaded[name], requests, shapes) if measure_compiles else None)
        timed = examples and not (name == signatures.BFLOAT16 and not device["bf16_units"])
        described[name] = {**entry, **(_timed(name, loaded, task, examples, reused) if timed
                                       else {"examples_per_second": None, "dev_score": None})}
        if examples and not timed:  # emulated bf16 is slow, and the choice ignores it from such a machine
            described[name]["not_measured"] = NO_BF16_UNITS
    return {"signatures": described, "measured_on": device,
            "measured_dev_examples": {"count": len(examples), "cap": DEV_CAP}}
