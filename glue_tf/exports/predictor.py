"""Predictions from an exported SavedModel (TensorFlow and tensorflow-text only), and its scores.

The signature run is chosen where the model runs (:mod:`glue_tf.exports.choice`), for the
:class:`~glue_tf.precision.Machine` the caller detected where its process started.
Examples are sorted by length so each call pads little: by their token counts,
which the export computes in-graph with its own tokenizer. An export that saved its
``tokenize`` and ``from_tokens_*`` functions is tokenized once (:func:`run_tokenized`):
the packed rows are sorted by their counts and fed to the encoder, cut to each call's
longest row. An older one is counted (:func:`token_lengths`) and then called with text,
which tokenizes it again; older still, by characters, which pads more: a word the vocabulary splits into many pieces is
short in characters and long in tokens (docs/BENCHMARKS.md compares the two orders' padding
efficiency, ``bench/speed.py infer``). The compiled
signature sorts and cuts its input into grid sub-batches itself, so it gets bigger calls
(:data:`COMPILED_CALL_ROWS`): fewer calls, and its sub-batches fill its largest
grid size.
"""

from __future__ import annotations

import time

import numpy as np

from glue_tf import metrics
from glue_tf.errors import ModelMismatchError, UnlabelledSplitError
from glue_tf.exports import choice, saved_model, signatures
from glue_tf.precision import Machine
from glue_tf.tasks import Task

COMPILED_CALL_ROWS = 512
COUNT_CALL_ROWS = 4096  # rows per call of the export's tokenizer (its counter or tokenize): cheap, so large


class ExportPredictor:
    """Calls the export's chosen signature (``.signature_name``, ``.reason``) in batches of similar length.

    ``machine``: where it runs (:meth:`glue_tf.precision.Machine.detect`); ``precision``: a word of
    :mod:`glue_tf.precision` (see :func:`glue_tf.exports.choice.choose`); ``setting`` names where it
    came from, for the error a bad value raises.

    >>> predictor = ExportPredictor("run/models/sst2/1", Machine.detect())  # doctest: +SKIP
    >>> predictor.outputs(TASKS["sst2"], [{"sentence": "a delight"}])  # doctest: +SKIP
    """

    def __init__(self, path, machine: Machine, batch_size: int = 64, precision: str = "auto",
                 setting: str = "--precision"):
        self.signatures, self.metadata = saved_model.load_signatures(path)
        self.signature_name, self.reason = choice.choose(self.metadata, self.signatures, machine, precision, setting)
        self.path = path
        self.batch_size = batch_size
        self.call_rows = rows_per_call(self.signature_name, batch_size)

    def raw_outputs(self, task: Task, examples: list[dict]) -> dict[str, np.ndarray]:
        """Every output of the signature (probabilities, label_id, ... or score), in ``examples`` order."""
        columns = {field: [e[field] for e in examples] for field in task.text_features}
        return sorted_outputs(self.signatures, self.signature_name, columns, self.call_rows)

    def outputs(self, task: Task, examples: list[dict]) -> np.ndarray:
        """Label ids (or clipped STS-B scores) for ``examples``, in their order."""
        if not examples:
            return np.zeros(0, dtype=np.float32 if task.is_regression else np.int64)
        return metrics.predictions_from_outputs(task, self.raw_outputs(task, examples))


def rows_per_call(signature_name: str, batch_size: int) -> int:
    """How many rows to give one call of a signature: ``batch_size``, or more for the compiled one."""
    return max(COMPILED_CALL_ROWS, batch_size) if signature_name == signatures.COMPILED else batch_size


def sorted_outputs(signatures: dict, name: str, columns: dict[str, list[str]], rows: int,
                   on_progress=None, step_widths: bool = False) -> dict[str, np.ndarray]:
    """The outputs of signature ``name`` of a loaded export (``signatures``) for every row of ``columns`` (the
    task's text fields, in its order), ``rows`` per call in length order; outputs in input order.

    Tokenized once where the export saved ``tokenize`` and ``from_tokens_*`` (:func:`run_tokenized`);
    an older export is counted, then called with text. The one way ``evaluate``, ``predict`` and the
    service's ``/score`` and jobs run an export over many rows; ``on_progress(done)`` after each call.
    ``step_widths``: see :func:`run_tokenized` (the text-in signatures of older exports pad to the steps themselves)."""
    tokenized = saved_model.from_tokens(signatures, name)
    if tokenized is not None:
        return run_tokenized(*tokenized, columns, rows, on_progress, step_widths)
    lengths = token_lengths(saved_model.token_counter(signatures), columns)
    return run_length_sorted(text_call(signatures[name]), columns, rows, on_progress, lengths)


def text_call(signature):
    """``call(columns) -> {output: array}`` for a text-in signature, as :func:`run_length_sorted` calls it."""
    import tensorflow as tf

    def call(chunk):
        result = signature(**{field: tf.constant(texts) for field, texts in chunk.items()})
        return {key: value.numpy() for key, value in result.items()}

    return call


def token_lengths(counter, columns: dict[str, list[str]]) -> np.ndarray | None:
    """Each row's token count by the export's ``counter`` (:func:`glue_tf.exports.saved_model.token_counter`), or None
    where the export has none. ``columns``: the task's text fields, in its order, as lists of strings."""
    if counter is None:
        return None
    import tensorflow as tf

    size = len(next(iter(columns.values()), []))
    counts = [counter(*(tf.constant(texts[start : start + COUNT_CALL_ROWS]) for texts in columns.values())).numpy()
              for start in range(0, size, COUNT_CALL_ROWS)]
    return np.concatenate(counts) if counts else np.zeros(0, np.int32)


def run_tokenized(tokenize, run, columns: dict[str, list[str]], rows: int, on_progress=None,
                  step_widths: bool = False) -> dict[str, np.ndarray]:
    """The outputs of ``run`` (:func:`glue_tf.exports.saved_model.from_tokens`) for every row of ``columns``,
    tokenized once by ``tokenize``, sorted by token count and cut, ``rows`` per call, to the longest row of
    each call. Outputs in input order.

    ``step_widths``: cut to the smallest of :func:`glue_tf.exports.signatures.padded_widths` that holds the
    longest row instead, as the text-in signatures pad: a long-lived server (``/score``, jobs) then sees a few
    widths, so its per-shape caches stay bounded; a one-off ``predict`` pads less without."""
    import tensorflow as tf

    size = len(next(iter(columns.values()), []))
    parts = [tokenize(*(tf.constant(texts[start : start + COUNT_CALL_ROWS]) for texts in columns.values()))
             for start in range(0, size, COUNT_CALL_ROWS)]
    if not parts:
        return {}
    packed = {name: np.concatenate([part[name].numpy() for part in parts]) for name in parts[0]}
    lengths = packed.pop(signatures.TOKEN_COUNT)
    steps = np.array(signatures.padded_widths(next(iter(packed.values())).shape[1])) if step_widths else None

    def call(chunk):
        width = max(int(chunk[signatures.TOKEN_COUNT].max()), 2)
        width = int(steps[np.searchsorted(steps, width)]) if steps is not None else width
        result = run({name: tf.constant(column[:, :width]) for name, column in chunk.items()
                      if name != signatures.TOKEN_COUNT})
        return {key: value.numpy() for key, value in result.items()}

    return run_length_sorted(call, {**packed, signatures.TOKEN_COUNT: lengths}, rows, on_progress, lengths)


def run_length_sorted(call, columns: dict[str, list[str]], rows: int, on_progress=None,
                      lengths=None) -> dict[str, np.ndarray]:
    """``call(columns) -> {output: array}`` over rows sorted by length, ``rows`` per call; outputs in input
    order. ``columns``: lists of texts, or arrays of rows (:func:`run_tokenized`). ``lengths``: each row's
    token count (:func:`token_lengths`); None sorts by characters.
    ``on_progress(done)`` after each call. The one batching loop of ``evaluate``, ``predict`` and the
    service's ``/score`` and jobs."""
    size = len(next(iter(columns.values()), []))
    if lengths is None:
        lengths = [sum(len(texts[i]) for texts in columns.values()) for i in range(size)]
    order = np.argsort(lengths, kind="stable")
    outputs: dict[str, np.ndarray] = {}
    for start in range(0, size, rows):
        picked = order[start : start + rows]
        chunk = {field: texts[picked] if isinstance(texts, np.ndarray) else [texts[i] for i in picked]
                 for field, texts in columns.items()}
        for key, value in call(chunk).items():
            value = np.asarray(value)
            if key not in outputs:
                outputs[key] = np.zeros((size, *value.shape[1:]), value.dtype)
            outputs[key][picked] = value
        if on_progress:
            on_progress(min(start + rows, size))
    return outputs


def score_export(predictor: ExportPredictor, task: Task, source, splits) -> dict:
    """The export's official metrics (points) on labelled ``splits`` of a data source.

    The one way an export is scored (``glue-tf evaluate``; ``train-all`` for a task
    whose model was trained elsewhere). Returns ``metrics`` ``{split: {metric: points}}``,
    the score ``components``, the task ``score`` (None unless every split it needs was
    scored), ``examples`` per split and the prediction ``seconds``.
    """
    exported_for = predictor.metadata["task"]
    if exported_for != task.predicted_by:
        raise ModelMismatchError(f"the export at {predictor.path} is a {exported_for} model; "
                                 f"{task.name} needs a {task.predicted_by} model")
    per_split, examples_per_split, seconds = {}, {}, 0.0
    for split in splits:
        examples = source.examples(task, split)
        labels = np.array([e["label"] for e in examples])
        if len(labels) and np.all(labels == -1):
            dev = f" ({', '.join(task.dev_splits)})" if task.dev_splits else ""
            raise UnlabelledSplitError(f"{task.name} {split} has no labels (a test split); evaluate a dev split{dev}")
        started = time.perf_counter()
        predictions = predictor.outputs(task, examples)
        seconds += time.perf_counter() - started
        per_split[split] = metrics.compute_metrics(task, labels, predictions)
        examples_per_split[split] = len(examples)
    components = metrics.score_components(task, per_split)
    return {"metrics": per_split, "components": components, "score": metrics.complete_score(task, components),
            "examples": examples_per_split, "seconds": seconds}
