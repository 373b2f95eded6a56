"""Text-in SavedModels in the TF Serving layout, written atomically.

``<out>/models/<task>/<version>/`` holds a SavedModel whose signatures
(:mod:`glue_tf.signatures`) take the task's raw text fields (string tensors
named as in the task registry) and return ``probabilities``, ``label_id`` and
``logits`` (STS-B: ``score``, clipped to [0, 5], and the unclipped
``raw_score``), plus ``metadata.json`` and TF Serving's warm-up file.
Tokenization runs inside the graph, so loading needs TensorFlow and
tensorflow-text, not KerasHub. ``serving_default`` is float32, uncompiled and
pads to the longest text of each request: it runs anywhere, stock TF Serving
included. ``serving_compiled`` runs the same float32 encoder under XLA on a
fixed grid of shapes; ``serving_bfloat16`` computes under ``mixed_bfloat16``.
Whatever precision the model was trained in, all three read its float32
weights. The metadata records what the export machine measured for each
(:mod:`glue_tf.export_measure`), so where the model runs a signature can be
chosen without labels.

A version is written to a hidden temporary folder and renamed into place when
complete: a reader never sees half a model, and a crash leaves only a
``.tmp-*`` folder that readers ignore and the next export removes. The metadata
records the SHA-256 of the weights, so a run resumed after its export was
committed does not write the same weights again as a new version. Its scores
(``dev_metrics``, ``dev_metrics_per_epoch``, ``seeds``) are in points, as GLUE
reports them; ``score_unit`` says so (``dev_metrics`` reads older exports too).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from glue_tf import export_measure, signatures
from glue_tf import model as model_lib
from glue_tf.storage import writing
from glue_tf.tasks import Task

METADATA_FILE = "metadata.json"
WEIGHTS_DIGEST = "weights_sha256"
SCORE_UNIT = "points"
_VERSION = re.compile(r"^\d+$")


def task_dir(out_dir, task_name: str) -> Path:
    return Path(out_dir) / "models" / task_name


def versions(model_root: Path) -> list[int]:
    """Complete versions under ``<out>/models/<task>``, oldest first."""
    if not model_root.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_root.iterdir()
        if _VERSION.match(entry.name) and (entry / "saved_model.pb").is_file() and (entry / METADATA_FILE).is_file()
    )


def latest(out_dir, task_name: str) -> Path | None:
    root = task_dir(out_dir, task_name)
    found = versions(root)
    return root / str(found[-1]) if found else None


def _outputs(task: Task, logits):
    """The signatures' outputs from float32 logits: one definition for every signature."""
    import tensorflow as tf

    if task.is_regression:
        raw = logits[:, 0]
        return {"score": tf.clip_by_value(raw, *task.score_range), "raw_score": raw}
    return {
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "label_id": tf.argmax(logits, axis=-1, output_type=tf.int64),
        "logits": logits,
    }


def build_serving_module(model, preprocessor, task: Task):
    """A ``tf.Module`` with the text-in functions of :data:`glue_tf.signatures.NAMES` (``module.signatures()``).

    Whatever policy ``model`` was trained under, the float32 signatures run a
    float32 rebuild of it and :data:`~glue_tf.signatures.BFLOAT16` a
    ``mixed_bfloat16`` rebuild called statelessly on the float32 variables, so
    the weights are saved once. The module tracks the preprocessor and those
    variables, not the Keras models: saving a Keras model traces a default
    signature for it and each model nested in it, seconds an export need not spend.
    """
    import tensorflow as tf

    if not preprocessor.built:
        preprocessor.build(None)
    float32 = model_lib.rebuild(model, task, "float32")
    bfloat16 = model_lib.rebuild(float32, task, "mixed_bfloat16")
    input_names = model_lib.input_names(float32)
    widths = signatures.grid_widths(int(preprocessor.sequence_length))
    text_specs = [tf.TensorSpec([None], tf.string, name=name) for name in task.text_features]

    # Each piece is traced once (the tokenizer's ragged ops take seconds) and called by every signature.
    @tf.function(input_signature=text_specs)
    def pack(*texts):
        packed = preprocessor(x=texts)
        lengths = tf.reduce_sum(tf.cast(packed["padding_mask"], tf.int32), axis=1)
        return {name: packed[name] for name in input_names}, lengths

    @tf.function
    def float32_logits(inputs):
        return tf.cast(float32(inputs, training=False), tf.float32)

    def bfloat16_logits(inputs):
        logits, _ = bfloat16.stateless_call(float32.trainable_variables, float32.non_trainable_variables,
                                            inputs, training=False)
        return tf.cast(logits, tf.float32)

    compiled_logits = tf.function(lambda inputs: float32_logits(inputs), jit_compile=True)  # XLA, per grid shape

    def padded_to_longest(texts, logits):
        features, lengths = pack(*texts)
        width = tf.maximum(tf.reduce_max(lengths), 2)  # pad to the longest text, not to max length
        return _outputs(task, logits({name: column[:, :width] for name, column in features.items()}))

    class GlueServing(tf.Module):
        def __init__(self):
            super().__init__(name=f"glue_{task.name}")
            self.preprocessor = preprocessor  # tracked: its tokenizer's resources and these variables are saved
            self.weights = list(float32.weights)

        @tf.function(input_signature=text_specs)
        def token_lengths(self, *texts):  # a function of the SavedModel, not a signature: callers sort by it
            return pack(*texts)[1]

        @tf.function(input_signature=text_specs)
        def serve(self, *texts):
            return padded_to_longest(texts, float32_logits)

        @tf.function(input_signature=text_specs)
        def serve_bfloat16(self, *texts):
            return padded_to_longest(texts, bfloat16_logits)

        @tf.function(input_signature=text_specs)
        def serve_compiled(self, *texts):
            features, lengths = pack(*texts)
            order = tf.argsort(lengths, stable=True)  # similar lengths share a sub-batch
            in_order = {name: tf.gather(column, order) for name, column in features.items()}
            logits = _grid_logits(compiled_logits, in_order, tf.gather(lengths, order), widths, task.num_outputs)
            return _outputs(task, tf.gather(logits, tf.math.invert_permutation(order)))

        def signatures(self):
            return {signatures.DEFAULT: self.serve, signatures.COMPILED: self.serve_compiled,
                    signatures.BFLOAT16: self.serve_bfloat16}

    return GlueServing()


def _grid_logits(encode, features, lengths, widths, num_outputs: int):
    """Logits of rows sorted by length, run as sub-batches padded to grid shapes (in-graph).

    Each sub-batch has the grid batch size :func:`glue_tf.signatures.sub_batch_size`
    gives for the rows left and holds the next rows (only the last has padding
    rows: zeros with a zero padding mask, whose logits are dropped; rows never
    attend to each other, so they change nothing). It is cut to the smallest
    grid width that holds its longest row, which the rows before it do too.
    """
    import tensorflow as tf

    sizes = tf.constant(signatures.BATCH_SIZES, tf.int32)
    grid = tf.constant(widths, tf.int32)
    rows = tf.size(lengths)

    def step(start, logits):
        batch = tf.reduce_max(tf.boolean_mask(sizes, sizes <= 2 * (rows - start)))
        real = tf.minimum(batch, rows - start)
        width = tf.reduce_min(tf.boolean_mask(grid, grid >= lengths[start + real - 1]))
        inputs = {name: tf.pad(column[start : start + real, :width], [[0, batch - real], [0, 0]])
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


def read_metadata(version_dir) -> dict:
    return json.loads((Path(version_dir) / METADATA_FILE).read_text(encoding="utf-8"))


def dev_metrics(metadata: dict) -> dict | None:
    """The export's dev metrics in points (exports written before ``score_unit`` held fractions)."""
    values = metadata.get("dev_metrics")
    if not values:
        return None
    scale = 1.0 if metadata.get("score_unit") == SCORE_UNIT else 100.0
    return {key: scale * value for key, value in values.items()}


def latest_holding(out_dir, task_name: str, digest: str) -> Path | None:
    """The latest version if it serves exactly these weights, else None.

    A run killed after its export was renamed into place but before it finished
    resumes with the weights it had exported: it must not write them again as a
    second version.
    """
    path = latest(out_dir, task_name)
    if path is None:
        return None
    return path if read_metadata(path).get(WEIGHTS_DIGEST) == digest else None


def export(model, preprocessor, task: Task, out_dir, metadata: dict, digest: str | None = None,
           dev_examples: list[dict] | None = None) -> Path:
    """Writes the next version of ``task``'s SavedModel and returns its folder.

    ``digest``: the model's :func:`weights_digest` if the caller has it already.
    ``dev_examples``: labelled examples (the task's text fields and ``label``)
    to measure each signature's speed and dev score on, after compiling every
    grid shape (:mod:`glue_tf.export_measure`); without them (None) the export
    records no figures and costs no compiles.
    """
    import tensorflow as tf

    root = task_dir(out_dir, task.name)
    with writing("an export folder", root):
        root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    existing = [int(e.name) for e in root.iterdir() if _VERSION.match(e.name)]
    version = max(existing, default=0) + 1
    tmp = root / f".tmp-{version}-{os.getpid()}"
    module = build_serving_module(model, preprocessor, task)
    max_seq_length = int(preprocessor.sequence_length)
    final = root / str(version)
    with writing(f"the {task.name} export", final):
        try:
            started = time.perf_counter()
            tf.saved_model.save(module, str(tmp), signatures=module.signatures())
            requests = signatures.write_warmup(tmp, preprocessor, task.text_features, max_seq_length)
            saved = time.perf_counter()
            loaded = _loaded_signatures(tmp) if dev_examples is not None else {}  # measured as a server loads it
            measured = export_measure.measure(loaded, task, requests, max_seq_length, dev_examples)
            del loaded
            seconds = {"save": round(saved - started, 1), "measure": round(time.perf_counter() - saved, 1)}
            metadata = {**metadata, **measured, "task": task.name, "version": version, "score_unit": SCORE_UNIT,
                        WEIGHTS_DIGEST: digest or weights_digest(model), "export_seconds": seconds}
            (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves nothing half-written
    return final


def _loaded_signatures(path) -> dict:
    """The SavedModel's signatures by name, each holding the loaded object that owns its resources."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    loaded = tf.saved_model.load(str(path))
    found = dict(loaded.signatures)
    for signature in found.values():
        signature._loaded = loaded  # keep the resources alive as long as the signature
    return found


def token_counter(loaded_signatures: dict):
    """The export's in-graph token counter, ``counter(*texts per text field) -> int32 lengths`` (special tokens
    included, truncated as the signatures truncate), or None for an export written before it was saved."""
    loaded = next(iter(loaded_signatures.values()))._loaded
    return getattr(loaded, "token_lengths", None)


def load_signatures(path) -> tuple[dict, dict]:
    """Loads an export with TensorFlow and tensorflow-text only; returns ``({name: signature}, metadata)``."""
    metadata = read_metadata(path)
    return _loaded_signatures(path), metadata


def load(path):
    """The export's ``serving_default`` and its metadata: ``(signature, metadata)``."""
    signatures, metadata = load_signatures(path)
    return signatures["serving_default"], metadata


def signature_def_map(path) -> dict:
    """The export's SignatureDefs as JSON, as TF Serving renders them in ``GetModelMetadataResponse``."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    defs = saved.meta_graphs[0].signature_def
    return {"signature_def": {name: json_format.MessageToDict(
        defs[name], preserving_proto_field_name=True, always_print_fields_with_no_presence=True) for name in defs}}
