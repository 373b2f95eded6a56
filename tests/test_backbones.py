from pathlib import Path

import pytest

from glue_tf import backbones
from glue_tf.config import DEFAULT_BACKBONE
from glue_tf.model import classifier_class

REPO = Path(__file__).resolve().parents[1]


def test_missing_folder_says_what_was_looked_for(tmp_path):
    with pytest.raises(backbones.BackboneError) as caught:
        backbones.check_spec(str(tmp_path / "nope"))
    message = str(caught.value)
    assert str(tmp_path / "nope") in message and "Keras preset or Hugging Face checkpoint" in message


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(backbones.BackboneError, match="has no config.json"):
        backbones.check_spec(str(tmp_path))


def test_unknown_preset_name_lists_the_family():
    with pytest.raises(backbones.BackboneError) as caught:
        backbones.check_spec("bert_gigantic_en")
    assert "not a local folder and not a KerasHub preset name" in str(caught.value)
    assert "bert_base_en_uncased" in str(caught.value)
    assert backbones.check_spec("bert_tiny_en_uncased") == "KerasHub preset bert_tiny_en_uncased"


def test_local_keras_preset_loads_backbone_and_its_own_tokenizer(tiny_preset):
    assert backbones.check_spec(str(tiny_preset)).startswith("Keras preset at")
    backbone, preprocessor = backbones.load(str(tiny_preset), sequence_length=24)
    assert backbone.num_layers == 2 and backbone.hidden_dim == 32
    assert preprocessor.sequence_length == 24
    assert preprocessor.tokenizer.vocabulary_size() == backbone.vocabulary_size > 100
    assert classifier_class(backbone).__name__ == "BertTextClassifier"


def test_hugging_face_checkpoint_is_converted_by_keras_hub():
    folder = REPO / DEFAULT_BACKBONE
    if not (folder / "model.safetensors").is_file():
        pytest.skip("run `make install` to fetch the MiniLM checkpoint")
    assert backbones.check_spec(str(folder)).startswith("Hugging Face checkpoint (bert)")
    backbone, preprocessor = backbones.load(str(folder), sequence_length=128)
    assert (backbone.num_layers, backbone.hidden_dim) == (6, 384)
    assert preprocessor.tokenizer.vocabulary_size() == 30522
    ids = preprocessor.tokenizer("Hello World")
    assert preprocessor.tokenizer.detokenize(ids) == "hello world"  # uncased vocabulary


def test_default_checkpoint_is_found_from_any_directory(tmp_path, monkeypatch):
    from glue_tf.config import default_backbone_path

    assert default_backbone_path() == REPO / "models" / "pretrained" / "all-minilm-l6-v2"
    if not (default_backbone_path() / "config.json").is_file():
        pytest.skip("run `make install` to fetch the MiniLM checkpoint")
    monkeypatch.chdir(tmp_path)  # not the repository: the relative default must still resolve
    assert backbones.check_spec(DEFAULT_BACKBONE) == f"Hugging Face checkpoint (bert) at {default_backbone_path()}"


@pytest.mark.slow
def test_hub_handles_go_to_keras_hub_and_offline_name_the_handle_and_a_local_folder(tmp_path):
    """Really offline: huggingface_hub's own offline switch, and an unreachable proxy for Kaggle."""
    import subprocess
    import sys

    handles = ["hf://glue-tf-tests/no-such-model", "kaggle://glue-tf-tests/bert/keras/no_such_model"]
    script = ("import sys\nfrom glue_tf.cli import main\n"
              "for handle in sys.argv[1:]:\n"
              "    print('exit', main(['train', '--task', 'rte', '--backbone', handle, '--out', 'out']))\n")
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": "", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", script, *handles], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["exit", "2", "exit", "2"], result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("glue-tf: error:")]
    assert len(errors) == 2, result.stderr[-3000:]
    for handle, site, error in zip(handles, ("Hugging Face Hub", "Kaggle"), errors):
        assert f"--backbone {handle}: could not fetch its config.json from {site}" in error
        assert "local folder" in error and "no folder at" not in error  # a handle, not a local path
