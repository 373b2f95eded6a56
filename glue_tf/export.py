"""Text-in SavedModels in the TF Serving layout, written atomically.

``<out>/models/<task>/<version>/`` holds a SavedModel whose ``serving_default``
signature takes the task's raw text fields (string tensors named as in the
task registry) and returns ``probabilities`` and ``label_id`` (STS-B: ``score``,
clipped to [0, 5], and the unclipped ``raw_score``), plus ``metadata.json``.
Tokenization runs inside the graph, padded only to the longest text of each
request, so loading needs TensorFlow and tensorflow-text, not KerasHub.

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
from pathlib import Path

import numpy as np

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


def build_serving_module(model, preprocessor, task: Task):
    """A ``tf.Module`` with the text-in ``serving_default`` function."""
    import tensorflow as tf

    if not preprocessor.built:
        preprocessor.build(None)
    input_names = tuple(model.input)

    class GlueServing(tf.Module):
        def __init__(self):
            super().__init__(name=f"glue_{task.name}")
            self.model = model
            self.preprocessor = preprocessor

        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.string, name=name) for name in task.text_features]
        )
        def serve(self, *texts):
            packed = self.preprocessor(x=tuple(texts))
            lengths = tf.reduce_sum(tf.cast(packed["padding_mask"], tf.int32), axis=1)
            width = tf.maximum(tf.reduce_max(lengths), 2)  # pad to the longest text, not to max length
            inputs = {name: packed[name][:, :width] for name in input_names}
            logits = tf.cast(self.model(inputs, training=False), tf.float32)
            if task.is_regression:
                raw = logits[:, 0]
                return {"score": tf.clip_by_value(raw, *task.score_range), "raw_score": raw}
            return {
                "probabilities": tf.nn.softmax(logits, axis=-1),
                "label_id": tf.argmax(logits, axis=-1, output_type=tf.int64),
                "logits": logits,
            }

    return GlueServing()


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


def export(model, preprocessor, task: Task, out_dir, metadata: dict, digest: str | None = None) -> Path:
    """Writes the next version of ``task``'s SavedModel and returns its folder.

    ``digest``: the model's :func:`weights_digest` if the caller has it already.
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
    final = root / str(version)
    with writing(f"the {task.name} export", final):
        try:
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
            metadata = {**metadata, "task": task.name, "version": version, "score_unit": SCORE_UNIT,
                        WEIGHTS_DIGEST: digest or weights_digest(model)}
            (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves nothing half-written
    return final


def load_signatures(path) -> tuple[dict, dict]:
    """Loads an export with TensorFlow and tensorflow-text only; returns ``({name: signature}, metadata)``."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    metadata = read_metadata(path)
    loaded = tf.saved_model.load(str(path))
    signatures = dict(loaded.signatures)
    for signature in signatures.values():
        signature._loaded = loaded  # keep the resources alive as long as the signature
    return signatures, metadata


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
