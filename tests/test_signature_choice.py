"""The choice of an export's signature where the model runs (``glue_tf.exports.choice``), branch by branch.

The metadata dicts are shaped as ``glue_tf.export`` writes them (figures as a
2-core AVX2 machine measured a tiny MRPC export), and each test describes the
machine it chooses for (:class:`glue_tf.precision.Machine`); the last test
chooses for a real export loaded by ``ExportPredictor``.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from glue_tf import precision
from glue_tf.errors import GlueTfError
from glue_tf.exports.choice import choose
from glue_tf.exports.signatures import BFLOAT16, COMPILED, DEFAULT, NAMES
from glue_tf.precision import Gpu, Machine, PrecisionError

# Where the choice runs: an AVX2 CPU with oneDNN on (no bf16 units), and one with AVX512-BF16.
AVX2 = Machine(cpu_model="AMD EPYC", cpu_flags=frozenset({"avx", "avx2", "fma"}), onednn=True)
AVX512_BF16 = Machine(cpu_model="AMD EPYC", cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}), onednn=True)

MEASURED = {
    "signatures": {
        DEFAULT: {"precision": "float32", "compiled": False, "examples_per_second": 1148.56,
                  "dev_score": 69.71},
        COMPILED: {"precision": "float32", "compiled": True, "widths": [16, 32, 64], "batch_sizes": [1, 8, 64],
                   "compile_seconds": {"1x16": 1.37, "64x64": 0.99}, "examples_per_second": 2511.1,
                   "dev_score": 69.71},
        BFLOAT16: {"precision": "mixed_bfloat16", "compiled": False, "examples_per_second": 982.22,
                   "dev_score": 69.71},
    },
    "measured_on": {"device": "CPU", "model": "AMD EPYC", "bf16_units": False, "onednn": True},
}


def measured(**changes) -> dict:
    """MEASURED with ``{"<signature>.<key>": value}`` or ``{"bf16_units": bool}`` changed."""
    metadata = copy.deepcopy(MEASURED)
    for key, value in changes.items():
        if key == "bf16_units":
            metadata["measured_on"]["bf16_units"] = value
        else:
            name, field = key.split(".")
            metadata["signatures"][name][field] = value
    return metadata


def bf16_machine(**changes) -> dict:
    """Measured on a machine with bf16 units where bf16 won: 3000 examples/s, 0.2 points below float32."""
    return measured(**{"bf16_units": True, f"{BFLOAT16}.examples_per_second": 3000.0,
                       f"{BFLOAT16}.dev_score": 69.51, **changes})


def test_an_export_without_measurements_serves_its_default():
    old = {"task": "mrpc", "version": 1}  # metadata.json written before the signatures were measured
    name, reason = choose(old, {DEFAULT}, AVX2)
    assert name == DEFAULT and "no measured signatures" in reason
    assert choose(old, set(NAMES), AVX512_BF16, "auto")[0] == DEFAULT
    assert choose(old, {DEFAULT}, AVX2, "float32")[0] == DEFAULT


def test_float32_takes_the_compiled_signature_only_where_it_was_clearly_faster():
    name, reason = choose(MEASURED, NAMES, AVX2, "float32")
    assert name == COMPILED and "2511" in reason and "1149" in reason and "--precision" in reason
    for speed in (900.0, 1200.0):  # slower, and faster within the noise of 512 timed examples
        name, reason = choose(measured(**{f"{COMPILED}.examples_per_second": speed}), NAMES, AVX2, "float32")
        assert name == DEFAULT and f"{COMPILED} was not 1.1x as fast ({speed:.0f} against 1149" in reason
    untimed = measured(**{f"{COMPILED}.examples_per_second": None, f"{DEFAULT}.examples_per_second": None})
    assert choose(untimed, NAMES, AVX2, "float32") == (DEFAULT, f"{DEFAULT}: float32 requested (--precision); "
                                                          "the export's signatures were not timed "
                                                          "(exported without dev examples)")
    assert choose(MEASURED, {DEFAULT, BFLOAT16}, AVX2, "float32")[0] == DEFAULT  # measured, but not in the SavedModel


def test_a_lead_timed_without_onednn_does_not_count_where_onednn_is_on():
    timed_without = copy.deepcopy(MEASURED)
    timed_without["measured_on"]["onednn"] = False  # an AVX2 training process: TensorFlow leaves oneDNN off
    without_onednn = dataclasses.replace(AVX2, onednn=False)
    name, reason = choose(timed_without, NAMES, AVX2, "float32")
    assert name == DEFAULT and reason.endswith("against kernels without oneDNN, and oneDNN is on here")
    assert choose(timed_without, NAMES, without_onednn, "float32")[0] == COMPILED  # the same kernels
    assert choose(MEASURED, NAMES, without_onednn, "float32")[0] == COMPILED  # plain kernels are slower here
    unrecorded = copy.deepcopy(MEASURED)
    del unrecorded["measured_on"]["onednn"]
    assert choose(unrecorded, NAMES, AVX2, "float32")[0] == COMPILED


def test_bfloat16_is_taken_when_asked_and_refused_when_absent():
    assert choose(MEASURED, NAMES, AVX2, "bfloat16")[0] == BFLOAT16  # asked: even emulated
    assert choose(MEASURED, NAMES, AVX2, "mixed_bfloat16") == choose(MEASURED, NAMES, AVX2, "bfloat16")  # an alias
    with pytest.raises(PrecisionError, match="GLUE_TF_PRECISION=bfloat16: this export has no "
                                             "serving_bfloat16 signature") as caught:
        choose({}, {DEFAULT}, AVX2, "bfloat16", setting="GLUE_TF_PRECISION")
    assert isinstance(caught.value, GlueTfError)


def test_float16_is_a_word_of_the_vocabulary_that_no_export_serves():
    for spelled in ("float16", "fp16", "mixed_float16"):
        with pytest.raises(PrecisionError, match="--precision=float16: this export has no float16 signature"):
            choose(MEASURED, NAMES, AVX2, spelled)


def test_a_bad_request_names_its_setting():
    with pytest.raises(GlueTfError, match=r"--precision='int8': expected one of auto, float32, bfloat16, float16"):
        choose(MEASURED, NAMES, AVX2, "int8")


def test_auto_takes_bfloat16_only_when_both_machines_have_units_and_it_held_and_won():
    name, reason = choose(bf16_machine(), NAMES, AVX512_BF16, "auto")
    assert name == BFLOAT16 and "3000" in reason
    refusals = {
        "not bfloat16: CPU (x86_64) reports neither amx_bf16 nor avx512_bf16": (bf16_machine(), AVX2),
        "the export machine had no bf16 units": (bf16_machine(bf16_units=False), AVX512_BF16),
        "bf16 lost 0.50 dev points": (bf16_machine(**{f"{BFLOAT16}.dev_score": 69.21}), AVX512_BF16),
        "bf16 was no faster than float32 (2000 against 2511": (
            bf16_machine(**{f"{BFLOAT16}.examples_per_second": 2000.0}), AVX512_BF16),
        "no dev score was measured": (bf16_machine(**{f"{BFLOAT16}.dev_score": None}), AVX512_BF16),
        "not bfloat16: GPU compute capability (7, 5) lacks bfloat16": (
            bf16_machine(), dataclasses.replace(AVX512_BF16, gpus=(Gpu("Tesla T4", (7, 5)),))),
    }
    for why, (metadata, machine) in refusals.items():
        name, reason = choose(metadata, NAMES, machine, "auto")
        assert name == COMPILED and why in reason, reason  # the float32 rule decides instead
    assert choose(bf16_machine(), {DEFAULT, COMPILED}, AVX512_BF16, "auto")[1].endswith(
        f"not bfloat16: the export has no {BFLOAT16} signature")
    assert choose(bf16_machine(), NAMES, AVX512_BF16, "float32")[0] == COMPILED  # float32 skips bf16
    ampere = Machine(cpu_flags=frozenset({"avx2"}), onednn=True, gpus=(Gpu("A100", (8, 0)),))
    assert choose(bf16_machine(), NAMES, ampere, "auto")[0] == BFLOAT16


def test_the_environment_variable_is_checked(monkeypatch):
    monkeypatch.delenv("GLUE_TF_PRECISION", raising=False)
    assert precision.from_environment() == "auto"
    monkeypatch.setenv("GLUE_TF_PRECISION", "float32")
    assert precision.from_environment() == "float32"
    monkeypatch.setenv("GLUE_TF_PRECISION", "half")
    with pytest.raises(GlueTfError, match="GLUE_TF_PRECISION='half': expected one of auto, float32, bfloat16"):
        precision.from_environment()


@pytest.mark.long  # trains and measures an export (about a minute); make test has test_export's quicker check
def test_a_model_trained_under_mixed_bfloat16_serves_float32_without_bf16_units(tmp_path):
    """An export of a model trained under ``mixed_bfloat16`` holds float32 signatures beside the bf16 one; on
    a CPU that reports no bf16 units, ``auto`` runs a float32 one (no emulated bf16), and its answers are
    those of ``serving_default``."""
    import keras
    import numpy as np

    from glue_tf import backbones, export
    from glue_tf import model as glue_model
    from glue_tf.exports.predictor import ExportPredictor
    from glue_tf.tasks import TASKS
    from support.tiny import SENTENCES, make_bert_preset, vocabulary_from

    task = TASKS["cola"]
    preset = make_bert_preset(tmp_path / "preset", vocabulary_from(SENTENCES, size=400), sequence_length=32)
    examples = [{"sentence": s, "label": i % 2, "idx": i} for i, s in enumerate(SENTENCES)]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        backbone, preprocessor = backbones.load(str(preset), 32)
        network = glue_model.build(backbone, task)
        assert network.compute_dtype == "bfloat16"
        packed = preprocessor(x=(np.array([e["sentence"] for e in examples]),))
        network.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        network.fit({name: packed[name] for name in network.input}, np.array([e["label"] for e in examples]),
                    batch_size=16, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    version = export.export(network, preprocessor, task, tmp_path / "run",
                            metadata={"precision": "mixed_bfloat16"}, dev_examples=examples)

    predictor = ExportPredictor(version, AVX2)
    described = predictor.metadata["signatures"]
    assert set(predictor.signatures) == set(NAMES) and described[BFLOAT16]["precision"] == "mixed_bfloat16"
    assert described[predictor.signature_name]["precision"] == "float32"
    assert predictor.reason.endswith("not bfloat16: CPU (x86_64) reports neither amx_bf16 nor avx512_bf16")
    default = ExportPredictor(version, AVX2, precision="float32")
    default.signature_name = DEFAULT  # serving_default itself, against the chosen signature
    np.testing.assert_allclose(predictor.raw_outputs(task, examples)["probabilities"],
                               default.raw_outputs(task, examples)["probabilities"], atol=1e-4)
    assert ExportPredictor(version, AVX2, precision="bfloat16").signature_name == BFLOAT16  # still there when asked
