"""What the export machine measured for each signature: speed, dev score, compile seconds.

Where the model runs, ``glue_tf.signature_choice`` picks a signature without
labels, from these figures: compiled float32 only where it was faster than
``serving_default``, bfloat16 only where it held the float32 dev score and won.
So the export measures each signature of the SavedModel it just wrote, loaded
as a server loads it: first the compiled signature over every grid shape (the
seconds each first call took: the compile a version pays at warm-up), then each
signature on the dev examples, in length-sorted chunks of :data:`CHUNK` as
``glue-tf evaluate`` runs them, after one call that pays its start-up. At most
:data:`DEV_CAP` examples are measured, spread evenly over those given, so an
export stays cheap. An export machine without bf16 units does not time the
bfloat16 signature: emulated, it is several times slower than float32 (about
18 s of a CoLA export), and the choice ignores bf16 figures from such a machine.
"""

from __future__ import annotations

import time

import numpy as np

from glue_tf import cpu, metrics, onednn, precision, signatures
from glue_tf.tasks import Task

DEV_CAP = 512
CHUNK = 64
PRECISIONS = {signatures.DEFAULT: "float32", signatures.COMPILED: "float32", signatures.BFLOAT16: "mixed_bfloat16"}
NO_BF16_UNITS = "the export machine has no bf16 units: its bf16 figures would not count where the model runs"


def measured_on() -> dict:
    """The device the figures were measured on: ``{"device", "model", "bf16_units", "onednn"}``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        model = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "unknown GPU")
        return {"device": "GPU", "model": model, "bf16_units": precision.bf16_units(gpus), "onednn": onednn.is_on()}
    return {"device": "CPU", "model": cpu.model_name() or "unknown CPU", "bf16_units": precision.bf16_units(gpus),
            "onednn": onednn.is_on()}


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


def speed_and_score(signature, task: Task, examples: list[dict]) -> tuple[float, float | None]:
    """``(examples_per_second, dev_score)`` of ``signature`` on labelled ``examples``.

    The dev score is the task's score in points, the examples taken as each of
    its dev splits (MNLI: matched and mismatched pooled).
    """
    order = np.argsort([sum(len(e[f]) for f in task.text_features) for e in examples], kind="stable")
    signature(**_columns(task, examples[:1]))  # start-up
    outputs: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for start in range(0, len(order), CHUNK):
        rows = order[start : start + CHUNK]
        for key, value in signature(**_columns(task, [examples[r] for r in rows])).items():
            value = value.numpy()
            outputs.setdefault(key, np.zeros((len(examples), *value.shape[1:]), value.dtype))[rows] = value
    seconds = time.perf_counter() - started
    labels = np.array([e["label"] for e in examples])
    per_split = dict.fromkeys(task.dev_splits, metrics.compute_metrics(
        task, labels, metrics.predictions_from_outputs(task, outputs)))
    score = metrics.complete_score(task, metrics.score_components(task, per_split))
    return round(len(examples) / seconds, 2), score


def measure(loaded: dict, task: Task, requests: list[dict], max_seq_length: int,
            dev_examples: list[dict] | None) -> dict:
    """The metadata's ``signatures``, ``measured_on`` and ``measured_dev_examples`` for a loaded export.

    ``loaded``: its signatures by name; ``requests``: its warm-up requests, one
    per shape of :func:`glue_tf.signatures.grid_shapes` in that order. Without
    ``dev_examples`` (None) nothing is timed: the figures are null, so no
    signature is chosen for a speed nobody measured. With an empty list only
    the compile seconds are measured.
    """
    shapes = signatures.grid_shapes(max_seq_length)
    examples = spread(dev_examples or [])
    device = measured_on()
    described = {}
    for name in signatures.NAMES:
        entry = {"precision": PRECISIONS[name], "compiled": name == signatures.COMPILED}
        if name == signatures.COMPILED:
            seconds = None if dev_examples is None else compile_seconds(loaded[name], requests, shapes)
            entry.update(widths=list(signatures.grid_widths(max_seq_length)),
                         batch_sizes=list(signatures.BATCH_SIZES), compile_seconds=seconds)
        timed = examples and not (name == signatures.BFLOAT16 and not device["bf16_units"])
        speed, score = speed_and_score(loaded[name], task, examples) if timed else (None, None)
        described[name] = {**entry, "examples_per_second": speed, "dev_score": score}
        if examples and not timed:  # emulated bf16 is slow, and signature_choice ignores it from such a machine
            described[name]["not_measured"] = NO_BF16_UNITS
    return {"signatures": described, "measured_on": device,
            "measured_dev_examples": {"count": len(examples), "cap": DEV_CAP}}
