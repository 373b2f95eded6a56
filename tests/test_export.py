"""Text-in SavedModels: same outputs as the Keras model, loadable without KerasHub, written atomically."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glue_tf import backbones, export, features
from glue_tf import model as model_lib
from glue_tf.tasks import TASKS

PROBE = Path(__file__).parent / "support" / "export_probe.py"

TEXTS = {
    "sentence1": ["The cat sat on the mat.", "A man is playing a flute while the band waits.", "Yes."],
    "sentence2": ["A cat sat.", "Someone plays music.", "No, it is not the same at all, not even close."],
}


def _keras_outputs(model, preprocessor, task, texts):
    """The Keras model on the same text, through the training-side feature pipeline."""
    import tensorflow as tf

    examples = {f: tf.constant(v) for f, v in texts.items()}
    examples["label"] = tf.zeros(len(texts["sentence1"]), tf.float32 if task.is_regression else tf.int64)
    examples["idx"] = tf.range(len(texts["sentence1"]), dtype=tf.int32)
    encoded = features.encode(tf.data.Dataset.from_tensor_slices(examples), task, preprocessor)
    dataset = features.batches_dataset(encoded, [np.arange(len(encoded))], with_labels=False,
                                       feature_names=model_lib.input_names(model))
    return model.predict(dataset, verbose=0)


def _probe(path, texts):
    result = subprocess.run([sys.executable, str(PROBE), str(path), json.dumps(texts)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task_name", ["mrpc", "stsb"])
def test_export_reloads_without_keras_hub_and_matches_keras(tiny_preset, tmp_path, task_name):
    task = TASKS[task_name]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=32)
    model = model_lib.build(backbone, task)
    path = export.export(model, preprocessor, task, tmp_path, metadata={"note": "test"})

    expected = _keras_outputs(model, preprocessor, task, TEXTS)
    probe = _probe(path, TEXTS)
    assert probe["keras_hub_imported"] is False
    assert probe["inputs"] == ["sentence1", "sentence2"]
    outputs = probe["outputs"]
    if task.is_regression:
        assert np.allclose(outputs["raw_score"], expected[:, 0], atol=1e-5)
        assert np.allclose(outputs["score"], np.clip(expected[:, 0], 0, 5), atol=1e-5)
    else:
        assert np.allclose(outputs["logits"], expected, atol=1e-5)
        probabilities = np.asarray(outputs["probabilities"])
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
        assert outputs["label_id"] == np.argmax(expected, axis=1).tolist()
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata == {"note": "test", "task": task_name, "version": 1, "score_unit": "points",
                        "weights_sha256": export.weights_digest(model)}


def test_versions_increase_and_incomplete_exports_are_invisible(tiny_preset, tmp_path):
    task = TASKS["cola"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
    model = model_lib.build(backbone, task)
    root = export.task_dir(tmp_path, "cola")
    # A crashed export leaves a hidden temporary folder and a version folder without metadata.
    (root / ".tmp-1-999").mkdir(parents=True)
    (root / "7").mkdir()
    assert export.latest(tmp_path, "cola") is None
    first = export.export(model, preprocessor, task, tmp_path, metadata={})
    assert first.name == "8"  # never reuses a number a reader might have seen
    assert not (root / ".tmp-1-999").exists()
    assert export.versions(root) == [8]
    second = export.export(model, preprocessor, task, tmp_path, metadata={})
    assert export.latest(tmp_path, "cola") == second and export.versions(root) == [8, 9]

    # A resumed run recognises the latest version as holding its weights, and only those.
    digest = export.weights_digest(model)
    assert export.latest_holding(tmp_path, "cola", digest) == second
    model.weights[-1].assign(model.weights[-1] + 1.0)
    assert export.weights_digest(model) != digest
    assert export.latest_holding(tmp_path, "cola", export.weights_digest(model)) is None


def test_long_inputs_are_truncated_to_max_length(tiny_preset, tmp_path):
    task = TASKS["cola"]
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=16)
    path = export.export(model_lib.build(backbone, task), preprocessor, task, tmp_path, metadata={})
    probe = _probe(path, {"sentence": ["word " * 500, "", "short one"]})
    assert len(probe["outputs"]["label_id"]) == 3


def test_exports_need_tensorflow_text_ops_beyond_core_tensorflow(trained_exports):
    """The evidence behind the README's TF Serving note: which ops, and what stock TensorFlow says."""
    version = export.latest(trained_exports, "mrpc")
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run([sys.executable, str(root / "scripts" / "export_ops.py"), str(version)],
                            capture_output=True, text=True, check=True)
    ops = json.loads(listed.stdout)["not_in_core_tensorflow"]
    assert {"CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"} <= set(ops)
    assert all("Wordpiece" in op or "UTF8" in op or "Regex" in op or op.startswith("TFText>") for op in ops)

    bare = "import tensorflow as tf; tf.saved_model.load(%r)" % str(version)
    failed = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True)
    assert failed.returncode != 0 and "Op type not registered" in failed.stderr


def test_dev_metrics_are_read_in_points_from_old_and_new_exports():
    assert export.dev_metrics({"score_unit": "points", "dev_metrics": {"accuracy": 84.25}}) == {"accuracy": 84.25}
    # Exports written before metadata.json recorded its unit held fractions.
    assert export.dev_metrics({"dev_metrics": {"accuracy": 0.8425}}) == {"accuracy": pytest.approx(84.25)}
    assert export.dev_metrics({"score_unit": "points"}) is None
