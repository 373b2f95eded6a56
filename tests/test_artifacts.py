"""What a user carries away from an export: versions, TF Serving's requirement, the model card, the Keras preset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glue_tf import model_card, provenance, tf_serving_requirements
from glue_tf.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]

def test_library_versions_name_what_wrote_the_export():
    versions = provenance.library_versions()
    assert set(versions) == {*provenance.DISTRIBUTIONS, "python"}
    import tensorflow as tf

    assert versions["tensorflow"] == tf.__version__ and versions["glue-tf"] and versions["python"].startswith("3.")


def test_backbone_origin_reads_the_checkpoints_own_name_and_licence(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: apache-2.0\n---\n# all-MiniLM-L6-v2\n")
    origin = provenance.backbone_origin("models/pretrained/x", tmp_path)
    assert origin == {"spec": "models/pretrained/x", "source": "folder",
                      "checkpoint": "nreimers/MiniLM-L6-H384-uncased", "license": "apache-2.0"}
    (tmp_path / "README.md").write_text("# no front matter\nlicense: mit\n")
    assert provenance.backbone_origin("x", tmp_path)["license"] is None
    assert provenance.backbone_origin("bert_tiny_en_uncased", None)["source"] == "KerasHub preset"


def test_continuing_from_an_exports_keras_preset_names_the_checkpoint_it_came_from(tmp_path):
    """Not "keras" (the preset folder's name): the export's own backbone, and which export was continued."""
    version = tmp_path / "models" / "cola" / "2"
    (version / "keras").mkdir(parents=True)
    (version / "keras" / "metadata.json").write_text(json.dumps({"keras_version": "3.15.1"}))
    (version / "metadata.json").write_text(json.dumps({"task": "cola", "version": 2, "backbone": {
        "checkpoint": "nreimers/MiniLM-L6-H384-uncased", "license": "apache-2.0"}}))
    origin = provenance.backbone_origin(str(version / "keras"), version / "keras")
    assert origin["checkpoint"] == "nreimers/MiniLM-L6-H384-uncased" and origin["license"] == "apache-2.0"
    assert origin["fine_tuned_from"] == {"task": "cola", "version": 2, "export": str(version)}
    (version / "metadata.json").unlink()  # a folder merely named keras/ is read as any folder
    assert provenance.backbone_origin("keras", version / "keras")["checkpoint"] == "keras"


@pytest.mark.slow
def test_a_one_field_export_needs_exactly_the_documented_tensorflow_text_ops(tiny_exports):
    """Read in a process without tensorflow-text, whose op registry is core TensorFlow's alone. (A two-field
    export: ``test_export.test_exports_need_tensorflow_text_ops_beyond_core_tensorflow``.) The packer's
    ``RoundRobinTrim`` is there for one text field too."""
    version = tiny_exports / "models" / "cola" / "1"
    found = subprocess.run([sys.executable, "scripts/export_ops.py", str(version)], cwd=REPO,
                           capture_output=True, text=True, check=True)
    not_core = json.loads(found.stdout)["not_in_core_tensorflow"]
    assert not_core == sorted(tf_serving_requirements.TENSORFLOW_TEXT_OPS)
    assert tf_serving_requirements.requirements(version) == {
        "custom_ops": sorted(tf_serving_requirements.TENSORFLOW_TEXT_OPS), "tf_serving_min": "2.20"}


def test_an_unknown_tensorflow_text_op_is_refused_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setattr(tf_serving_requirements, "op_types", lambda _: {"MatMul", "TFText>NewOp"})
    with pytest.raises(ValueError, match="TFText>NewOp"):
        tf_serving_requirements.requirements(tmp_path)


def _metadata(seeds: int) -> dict:
    return {
        "version": 3, "max_seq_length": 128, "precision": "float32", "majority_score": 0.0,
        "backbone": {"class": "BertBackbone", "parameters": 22_000_000, "checkpoint": "nreimers/MiniLM-L6-H384-uncased",
                     "license": "apache-2.0", "source": "folder", "spec": "models/pretrained/all-minilm-l6-v2"},
        "data": {"source": "GLUE TSV", "train_examples": 8551, "dev_examples": {"validation": 1043}},
        "training_config": {"learning_rate": 5e-5, "epochs": 3}, "dev_metrics": {"matthews_corrcoef": 31.25},
        "dev_mean": {"matthews_corrcoef": 29.5}, "dev_std": {"matthews_corrcoef": 1.75},
        "seeds": [{"seed": s} for s in range(seeds)], "dev_score_ci95": [25.0, 37.5], "dev_score_ci95_method": "BCa",
        "signatures": {"serving_default": {"precision": "float32", "compiled": False, "examples_per_second": 812.5,
                                           "dev_score": 31.25}},
        "requires": {"custom_ops": ["TFText>RoundRobinTrim"], "tf_serving_min": "2.20"},
        "versions": {"tensorflow": "2.21.0", "glue-tf": "0.1.0"},
    }


def test_model_card_follows_hugging_faces_template_and_quotes_the_metadata():
    card = model_card.render(TASKS["cola"], _metadata(seeds=3))
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "license: apache-2.0" in front and "base_model: nreimers/MiniLM-L6-H384-uncased" in front
    headings = [line for line in body.splitlines() if line.startswith("#")]
    for expected in ("## Model Details", "## Uses", "### Direct Use", "### Out-of-Scope Use",
                     "## Bias, Risks, and Limitations", "## Training Details", "### Training Data",
                     "## Evaluation", "### Results", "## How to Get Started with the Model"):
        assert expected in headings, expected
    assert "| matthews_corrcoef | 31.2 | 29.5 ± 1.8 | 66.4 |" in body  # exported seed, mean ± std, human
    assert "Majority-class baseline" in body and "2.20 or newer" in body
    assert "dev examples (BCa) (of the mean over seeds): [25.0, 37.5]." in body
    assert "8551 training examples" in body and "- tensorflow: 2.21.0" in body


def test_model_card_of_one_seed_has_no_spread_column():
    body = model_card.render(TASKS["cola"], _metadata(seeds=1))
    assert "mean ± std" not in body and "| matthews_corrcoef | 31.2 | 66.4 |" in body


@pytest.mark.slow
def test_keras_preset_reloads_with_its_preprocessor_and_predicts_raw_text(tiny_preset, tmp_path):
    """``TextClassifier.from_preset(folder).predict(texts)`` gives the fine-tuned model's logits, and
    ``fine_tuned_head`` hands the head back only to the same task."""
    import keras_hub
    import tensorflow as tf

    from glue_tf import backbones, keras_preset
    from glue_tf import model as model_lib

    backbone, preprocessor = backbones.load(str(tiny_preset), 32)
    network = model_lib.build(backbone, TASKS["mrpc"])
    keras_preset.write(network, preprocessor, TASKS["mrpc"], tmp_path / "keras")
    assert keras_preset.classifier_in(network).preprocessor is None  # the trained model is left as it was
    texts = (["the cat sat", "a dog ran far"], ["the cat sat down", "nothing at all"])
    restored = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "keras"))
    assert restored.preprocessor.sequence_length == 32
    expected = network.predict(preprocessor(x=tuple(tf.constant(t) for t in texts)), verbose=0)
    pairs = tf.data.Dataset.from_tensor_slices((texts,)).batch(2)  # x = (first texts, second texts); no y
    np.testing.assert_allclose(restored.predict(pairs, verbose=0), expected, atol=1e-5)
    head, why = keras_preset.fine_tuned_head(tmp_path / "keras", TASKS["mrpc"])
    assert head is not None and "restored" in why
    head, why = keras_preset.fine_tuned_head(tmp_path / "keras", TASKS["rte"])
    assert head is None and "trained for mrpc" in why


@pytest.mark.long  # the session's trained exports: make test-long
def test_a_trained_export_describes_itself(trained_exports):
    """A CoLA run's version: versions, TF Serving's minimum, a model card quoting its dev score, a Keras preset
    whose own metadata.json the version scan never takes for the export's."""
    import tensorflow as tf

    from glue_tf.exports import store

    version = store.latest(trained_exports, "cola")
    metadata = store.read_metadata(version)
    assert metadata["task"] == "cola" and store.versions(version.parent) == [int(version.name)]
    assert metadata["versions"]["tensorflow"] == tf.__version__ and metadata["requires"]["tf_serving_min"] == "2.20"
    assert metadata["keras_artifact"] == {"folder": "keras", "format": "keras_hub_preset"}
    card = (version / model_card.FILE).read_text(encoding="utf-8")
    assert f"| matthews_corrcoef | {metadata['dev_metrics']['matthews_corrcoef']:.1f} |" in card
    assert (version / "keras" / "metadata.json").is_file() and "task" not in json.loads(
        (version / "keras" / "metadata.json").read_text())


@pytest.mark.long  # the session's trained exports: make test-long
def test_the_keras_preset_gives_the_savedmodels_dev_predictions(trained_exports, glue_dir):
    import keras_hub
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  the SavedModel's tokenizer ops

    from glue_tf.data.sources import TsvSource
    from glue_tf.exports import store

    version = store.latest(trained_exports, "cola")
    sentences = [e["sentence"] for e in TsvSource(glue_dir).examples(TASKS["cola"], "validation")[:64]]
    saved = tf.saved_model.load(str(version)).signatures["serving_default"](sentence=tf.constant(sentences))
    restored = keras_hub.models.TextClassifier.from_preset(str(version / "keras"))
    logits = restored.predict(sentences, verbose=0)
    np.testing.assert_allclose(logits, saved["logits"].numpy(), atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(-1), saved["label_id"].numpy())


@pytest.mark.long  # the session's trained exports: make test-long
def test_training_from_an_exports_keras_folder_restores_the_head_only_for_its_task(trained_exports):
    from glue_tf.config import TrainConfig
    from glue_tf.exports import store
    from glue_tf.keras_preset import classifier_in
    from glue_tf.task_model import TaskModel

    folder = store.latest(trained_exports, "cola") / "keras"
    config = TrainConfig(backbone=str(folder), max_seq_length=64, precision="float32")
    same = TaskModel(TASKS["cola"], config).build(total_steps=10)
    assert same.head_origin == f"head restored from {folder}"
    import keras_hub

    fine_tuned = keras_hub.models.TextClassifier.from_preset(str(folder))
    for got, want in zip(classifier_in(same.model).get_weights(), fine_tuned.get_weights()):
        np.testing.assert_array_equal(got, want)
    other = TaskModel(TASKS["sst2"], config).build(total_steps=10)
    assert other.head_origin == f"new head: the head in {folder} was trained for cola (2 outputs), not sst2"
