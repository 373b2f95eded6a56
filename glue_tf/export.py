"""Text-in SavedModels in the TF Serving layout, written atomically.

``<out>/models/<task>/<version>/`` holds a SavedModel whose signatures
(:mod:`glue_tf.exports.signatures`) take the task's raw text fields (string tensors
named as in the task registry) and return ``probabilities``, ``label_id`` and
``logits`` (STS-B: ``score``, clipped to [0, 5], and the unclipped
``raw_score``), plus ``metadata.json`` and TF Serving's warm-up file.
Tokenization runs inside the graph, so loading needs TensorFlow and
tensorflow-text, not KerasHub. ``serving_default`` is float32, uncompiled and
pads each request to the grid width holding its longest text: it runs anywhere, stock TF Serving
included. ``serving_compiled`` runs the same float32 encoder under XLA on a
fixed grid of shapes; ``serving_bfloat16`` computes under ``mixed_bfloat16``.
Whatever precision the model was trained in, all three read its float32
weights. The metadata records what the export machine measured for each
(:mod:`glue_tf.export_measure`), so where the model runs a signature can be
chosen without labels. This module writes; :mod:`glue_tf.exports` reads.

A version is written to a hidden temporary folder and renamed into place when
complete: a reader never sees half a model, and a crash leaves only a
``.tmp-*`` folder that readers ignore and the next export removes. The metadata
records the SHA-256 of the weights, so a run resumed after its export was
committed does not write the same weights again as a new version. Its scores
(``dev_metrics``, ``dev_metrics_per_epoch``, ``seeds``) are in points, as GLUE
reports them; ``score_unit`` says so (``dev_metrics`` reads older exports too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from glue_tf import export_measure, keras_preset, model_card, provenance, tf_serving_requirements, timing_cache
from glue_tf import model as model_lib
from glue_tf.exports import saved_model, signatures, store
from glue_tf.precision import Machine, keras_policy
from glue_tf.storage import writing
from glue_tf.tasks import Task


def _outputs(task: Task, logits):
    """The signatures' outputs from float32 logits: one definition for every signature."""
    if task.is_regression:
        raw = logits[:, 0]
        return {"score": tf.clip_by_value(raw, *task.score_range), "raw_score": raw}
    return {
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "label_id": tf.argmax(logits, axis=-1, output_type=tf.int64),
        "logits": logits,
    }


@dataclasses.dataclass(frozen=True)
class _Encoder:
    """The traced pieces the signatures share: text to packed features, and features to float32 logits three ways.

    A plain object, so the module holding it does not track (and save) the Keras models behind them.
    """

    pack: Callable  # (*texts) -> ({input: packed column}, token lengths)
    float32: Callable
    bfloat16: Callable
    compiled: Callable  # float32 under XLA, one program per grid shape
    model: object  # the float32 network the pieces run: also the export's Keras artifact
    widths: tuple[int, ...]  # the compiled grid's widths (few: each is a compile)
    padded_widths: tuple[int, ...]  # what uncompiled calls pad to (finer: padding costs every call)


def _encoder(model, preprocessor, task: Task) -> tuple[_Encoder, list]:
    """The shared pieces for ``model``, and the float32 weights they all read.

    Whatever policy ``model`` was trained under, the float32 pieces run a float32
    rebuild of it and the bfloat16 one a ``mixed_bfloat16`` rebuild called
    statelessly on the float32 variables, so the weights are saved once. Each
    piece is traced once (the tokenizer's ragged ops take seconds).
    """
    if not preprocessor.built:
        preprocessor.build(None)
    float32 = model_lib.rebuild(model, task, "float32")
    bfloat16 = model_lib.rebuild(float32, task, keras_policy("bfloat16"))
    input_names = model_lib.input_names(float32)

    @tf.function(input_signature=_text_specs(task))
    def pack(*texts):
        packed = preprocessor(x=texts)
        return {name: packed[name] for name in input_names}, _token_counts(packed)

    @tf.function
    def float32_logits(inputs):
        return tf.cast(float32(inputs, training=False), tf.float32)

    def bfloat16_logits(inputs):
        logits, _ = bfloat16.stateless_call(float32.trainable_variables, float32.non_trainable_variables,
                                            inputs, training=False)
        return tf.cast(logits, tf.float32)

    compiled = tf.function(lambda inputs: float32_logits(inputs), jit_compile=True)
    length = int(preprocessor.sequence_length)
    encoder = _Encoder(pack, float32_logits, bfloat16_logits, compiled, float32, signatures.grid_widths(length),
                       signatures.padded_widths(length))
    return encoder, list(float32.weights)


def _token_counts(packed):
    """Each packed row's tokens, special tokens included: what rows are sorted and padded by."""
    return tf.reduce_sum(tf.cast(packed["padding_mask"], tf.int32), axis=1)


def _text_specs(task: Task) -> list:
    return [tf.TensorSpec([None], tf.string, name=name) for name in task.text_features]


class GlueServing(tf.Module):
    """The exported module: the text-in functions of :data:`glue_tf.exports.signatures.NAMES` (:meth:`signatures`),
    and functions of the SavedModel that are not signatures (TF Serving never sees them): the token counter
    ``token_lengths`` older callers sort by, and ``tokenize`` with one ``from_tokens_*`` function per
    signature (:data:`glue_tf.exports.signatures.FROM_TOKENS`), so ``predict`` and ``evaluate`` tokenize once,
    sort by the counts and run the same encoder on the packed rows.

    It tracks the preprocessor (its tokenizer's resources) and the float32 variables, not the Keras
    models: saving a Keras model traces a default signature for it and each model nested in it, seconds
    an export need not spend.
    """

    def __init__(self, model, preprocessor, task: Task):
        super().__init__(name=f"glue_{task.name}")
        self._task = task
        self._encoder, weights = _encoder(model, preprocessor, task)
        self.preprocessor = preprocessor
        self.weights = weights
        specs = _text_specs(task)
        self.token_lengths = tf.function(self._token_lengths, input_signature=specs)
        self.serve = tf.function(self._float32, input_signature=specs)
        self.serve_bfloat16 = tf.function(self._bfloat16, input_signature=specs)
        self.serve_compiled = tf.function(self._on_grid, input_signature=specs)
        self.tokenize = tf.function(self._tokenize, input_signature=specs)
        packed = [{name: tf.TensorSpec([None, None], column.dtype, name=name) for name, column in
                   self._encoder.pack.get_concrete_function(*specs).structured_outputs[0].items()}]
        self.from_tokens_float32 = tf.function(self._float32_from_tokens, input_signature=packed)
        self.from_tokens_bfloat16 = tf.function(self._bfloat16_from_tokens, input_signature=packed)
        self.from_tokens_compiled = tf.function(self._compiled_from_tokens, input_signature=packed)

    def _token_lengths(self, *texts):
        return self._encoder.pack(*texts)[1]

    def _tokenize(self, *texts):
        """The packed features at full length and each row's ``token_count``: tokenized once, then sorted,
        cut and fed to the ``from_tokens_*`` functions by the caller (:mod:`glue_tf.exports.predictor`)."""
        features, lengths = self._encoder.pack(*texts)
        return {**features, signatures.TOKEN_COUNT: lengths}

    def _float32_from_tokens(self, features):
        return _outputs(self._task, self._encoder.float32(features))

    def _bfloat16_from_tokens(self, features):
        return _outputs(self._task, self._encoder.bfloat16(features))

    def _compiled_from_tokens(self, features):
        return self._grid_outputs(features, _token_counts(features))

    def _float32(self, *texts):
        return self._padded(texts, self.from_tokens_float32)

    def _bfloat16(self, *texts):
        return self._padded(texts, self.from_tokens_bfloat16)

    def _padded(self, texts, from_tokens):
        """Outputs with each call padded to the step width (:func:`glue_tf.exports.signatures.padded_widths`)
        holding its longest text, not to the maximum length: a long-lived server's per-shape caches (oneDNN's
        primitives, the allocator's pools) then see a few widths, not one per length its traffic brings.

        The text-in signatures call the ``from_tokens_*`` functions rather than the encoder, so each encoder is
        traced (and saved) once, not twice: export time and the loaded model's function library halve."""
        features, lengths = self._encoder.pack(*texts)
        grid = tf.constant(self._encoder.padded_widths, tf.int32)
        width = tf.reduce_min(tf.boolean_mask(grid, grid >= tf.reduce_max(lengths)))
        return from_tokens({name: column[:, :width] for name, column in features.items()})

    def _on_grid(self, *texts):
        features, _ = self._encoder.pack(*texts)
        return self.from_tokens_compiled(features)

    def _grid_outputs(self, features, lengths):
        """Outputs of the compiled encoder, rows sorted by length so similar lengths share a grid sub-batch."""
        order = tf.argsort(lengths, stable=True)
        in_order = {name: tf.gather(column, order) for name, column in features.items()}
        logits = _grid_logits(self._encoder.compiled, in_order, tf.gather(lengths, order), self._encoder.widths,
                              self._task.num_outputs)
        return _outputs(self._task, tf.gather(logits, tf.math.invert_permutation(order)))

    @property
    def float32_model(self):
        """The float32 Keras model every signature runs (not tracked: the SavedModel holds functions, not it)."""
        return self._encoder.model

    def signatures(self) -> dict:
        return {signatures.DEFAULT: self.serve, signatures.COMPILED: self.serve_compiled,
                signatures.BFLOAT16: self.serve_bfloat16}


def _grid_logits(encode, features, lengths, widths, num_outputs: int):
    """Logits of rows sorted by length, run as sub-batches padded to grid shapes (in-graph).

    Each sub-batch has the grid batch size :func:`glue_tf.exports.signatures.sub_batch_size`
    gives for the rows left and holds the next rows (only the last has padding
    rows: zeros with a zero padding mask, whose logits are dropped; rows never
    attend to each other, so they change nothing). It is cut to the smallest
    grid width that holds its longest row, which the rows before it do too.
    """
    sizes = tf.constant(signatures.BATCH_SIZES, tf.int32)
    grid = tf.constant(widths, tf.int32)
    rows = tf.size(lengths)

    def step(start, logits):
        batch = tf.reduce_max(tf.boolean_mask(sizes, sizes <= 2 * (rows - start)))
        real = tf.minimum(batch, rows - start)
        width = tf.reduce_min(tf.boolean_mask(grid, grid >= lengths[start + real - 1]))
        inputs = {name: tf.pad(column[start : start + real, :width],  # columns a caller cut narrower: widened
                               [[0, batch - real], [0, width - tf.minimum(width, tf.shape(column)[1])]])
                  for name, column in features.items()}
        return start + real, tf.tensor_scatter_nd_update(
            logits, tf.range(start, start + real)[:, None], encode(inputs)[:real])

    _, logits = tf.while_loop(lambda start, _: start < rows, step,
                              (tf.constant(0), tf.zeros([rows, num_outputs], tf.float32)))
    return logits


def weights_digest(model) -> str:
    """SHA-256 over the model's weight values: names exactly which weights an export serves."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def _describe(folder: Path, float32, preprocessor, task: Task, metadata: dict) -> None:
    """What makes a version describe itself, written before it is renamed into place: ``metadata.json``
    with the library versions and the TF Serving release its ops need, the Keras artifact in ``keras/``
    (``float32``: the float32 model the signatures run, whatever the training policy), and ``MODEL_CARD.md``."""
    metadata = {**metadata, "versions": provenance.library_versions(),
                "requires": tf_serving_requirements.requirements(folder),
                "keras_artifact": {"folder": keras_preset.FOLDER,
                                   "format": keras_preset.write(float32, preprocessor, task, folder / keras_preset.FOLDER)}}
    (folder / store.METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True), encoding="utf-8")
    (folder / model_card.FILE).write_text(model_card.render(task, metadata), encoding="utf-8")


def _measure(folder: Path, model, task: Task, requests: list[dict], max_seq_length: int,
             dev_examples: list[dict] | None, measured_by: dict) -> dict:
    """:func:`glue_tf.export_measure.measure` on the SavedModel in ``folder``, loaded as a server loads it,
    plus the metadata's ``timings``: the figures measured here (and kept in :mod:`glue_tf.timing_cache`),
    or reused from an export of the same shape on this machine (only the dev scores measured again)."""
    machine = Machine.detect()  # the machine this export process runs on
    device = export_measure.measured_on(machine)
    if dev_examples is None:  # nothing timed, nothing kept
        return {**export_measure.measure({}, task, requests, max_seq_length, None, device), "timings": None}
    cache = timing_cache.TimingCache.here(os.environ, machine)
    grid = {"widths": list(signatures.grid_widths(max_seq_length)), "batch_sizes": list(signatures.BATCH_SIZES),
            "dev_cap": export_measure.DEV_CAP, "chunk": export_measure.CHUNK}
    key = timing_cache.key(model_lib.backbone_of(model), len(task.text_features), max_seq_length, device, grid)
    entry = cache.lookup(key) if dev_examples else None
    loaded = saved_model.loaded_signatures(folder)
    measured = export_measure.measure(loaded, task, requests, max_seq_length, dev_examples, device,
                                      entry["signatures"] if entry else None)
    if entry:
        return {**measured, "timings": cache.reused(entry)}
    if not dev_examples:  # compile seconds only: not a whole set of timings to keep
        return {**measured, "timings": None}
    return {**measured, "timings": cache.store(key, measured["signatures"], measured_by)}


def export(model, preprocessor, task: Task, out_dir, metadata: dict, digest: str | None = None,
           dev_examples: list[dict] | None = None) -> Path:
    """Writes the next version of ``task``'s SavedModel and returns its folder.

    ``digest``: the model's :func:`weights_digest` if the caller has it already.
    ``dev_examples``: labelled examples (the task's text fields and ``label``)
    to measure each signature's speed and dev score on, after compiling every
    grid shape (:mod:`glue_tf.export_measure`); without them (None) the export
    records no figures and costs no compiles.
    """
    root = store.task_dir(out_dir, task.name)
    with writing("an export folder", root):
        root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    existing = [int(e.name) for e in root.iterdir() if store.VERSION.match(e.name)]
    version = max(existing, default=0) + 1
    tmp = root / f".tmp-{version}-{os.getpid()}"
    module = GlueServing(model, preprocessor, task)
    max_seq_length = int(preprocessor.sequence_length)
    final = root / str(version)
    with writing(f"the {task.name} export", final):
        try:
            started = time.perf_counter()
            tf.saved_model.save(module, str(tmp), signatures=module.signatures())
            requests = signatures.write_warmup(tmp, preprocessor, task.text_features, max_seq_length)
            saved = time.perf_counter()
            measured = _measure(tmp, model, task, requests, max_seq_length, dev_examples,
                                {"task": task.name, "version": version, "folder": str(final)})
            seconds = {"save": round(saved - started, 1), "measure": round(time.perf_counter() - saved, 1)}
            metadata = {**metadata, **measured, "task": task.name, "version": version, "score_unit": store.SCORE_UNIT,
                        store.WEIGHTS_DIGEST: digest or weights_digest(model), "export_seconds": seconds}
            _describe(tmp, module.float32_model, preprocessor, task, metadata)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves nothing half-written
    return final
