"""Every TrainConfig field is a flag of `train` and `train-all`, generated from the dataclass."""

import dataclasses

import pytest

from glue_tf import cli
from glue_tf.config import TrainConfig


def _parse(*argv):
    return cli.build_parser().parse_args(list(argv))


@pytest.mark.parametrize("command", [["train", "--task", "rte"], ["train-all"]])
def test_no_flags_give_the_dataclass_defaults(command):
    assert cli._train_config(_parse(*command)) == TrainConfig()


def test_every_field_is_a_flag_and_reaches_the_config():
    config = cli._train_config(_parse(
        "train", "--task", "rte", "--backbone", "bert_tiny_en_uncased", "--epochs", "5", "--batch-size", "16",
        "--learning-rate", "3e-5", "--max-seq-length", "64", "--precision", "float32", "--seed", "7",
        "--dropout", "0.2", "--weight-decay", "0.05", "--warmup-fraction", "0.06", "--clip-norm", "0",
        "--optimizer-apply", "raw", "--eval-batch-size", "128", "--no-jit-compile", "--max-train-examples", "100", "--max-eval-examples", "50",
        "--seeds", "3", "--checkpoint-every", "0", "--skip-export-measurements", "--logging-steps", "25",
        "--recipe", "recipes/other.json",
    ))
    expected = TrainConfig(
        backbone="bert_tiny_en_uncased", epochs=5, batch_size=16, learning_rate=3e-5, max_seq_length=64,
        precision="float32", seed=7, dropout=0.2, weight_decay=0.05, warmup_fraction=0.06, clip_norm=0.0,
        optimizer_apply="raw", eval_batch_size=128, jit_compile=False, max_train_examples=100, max_eval_examples=50, seeds=3,
        checkpoint_every=0, measure_export=False, logging_steps=25, recipe="recipes/other.json",
    )
    assert config == expected
    # Every field was given a value other than its default above: a new field must be added here too.
    assert all(getattr(config, f.name) != f.default for f in dataclasses.fields(TrainConfig))


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        _parse("train", "--help")
    shown = " ".join(capsys.readouterr().out.split())
    for flag in ("--weight-decay WEIGHT_DECAY", "--warmup-fraction WARMUP_FRACTION", "--clip-norm CLIP_NORM",
                 "--eval-batch-size EVAL_BATCH_SIZE", "--logging-steps LOGGING_STEPS"):
        assert flag in shown
    assert "(default: 0.01)" in shown and "(default: 0.1)" in shown and "(default: 64)" in shown


def test_an_automatic_switch_takes_both_spellings():
    assert cli._train_config(_parse("train-all", "--jit-compile")).jit_compile is True
    assert cli._train_config(_parse("train-all", "--no-jit-compile")).jit_compile is False
    assert cli._train_config(_parse("train-all")).jit_compile is None  # on GPUs only (precision.xla_default)


def test_a_bad_value_names_the_flag(capsys):
    with pytest.raises(SystemExit):
        _parse("train", "--task", "rte", "--weight-decay", "lots")
    assert "--weight-decay: invalid float value: 'lots'" in capsys.readouterr().err
