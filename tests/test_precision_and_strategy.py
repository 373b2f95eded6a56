import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from glue_tf import cpu, distribute, precision
from glue_tf.precision import Gpu, Machine

MIRRORED_STEP = Path(__file__).parent / "support" / "mirrored_step.py"


CPU = Machine(cpu_model="AMD EPYC", cpu_flags=frozenset({"fpu", "avx", "avx2", "fma"}))
AMX = Machine(cpu_model="Xeon", cpu_flags=frozenset({"fpu", "avx2", "avx512f", "amx_bf16", "amx_tile"}))


def _with_gpus(*capabilities) -> Machine:
    return dataclasses.replace(CPU, gpus=tuple(Gpu(f"GPU {i}", c) for i, c in enumerate(capabilities)))


def test_auto_picks_bfloat16_only_where_the_cpu_has_it():
    policy, why = precision.resolve("auto", AMX)
    assert policy == "mixed_bfloat16" and "amx_bf16" in why
    policy, why = precision.resolve("auto", CPU)
    assert policy == "float32" and "neither" in why
    assert precision.resolve("mixed_float16", CPU) == ("mixed_float16", "requested")
    with pytest.raises(ValueError, match="--precision='int8': expected one of auto, float32, bfloat16, float16"):
        precision.resolve("int8", CPU)


def test_a_cpu_is_described_by_its_family_model_and_vector_flags(tmp_path, monkeypatch):
    """Sweep records name the CPU each point ran on; KVM guests all read "AMD EPYC", so the numbers and flags
    tell them apart, and ``model`` must not read the ``model name`` line."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
                       "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\nmodel\t\t: 99\n")
    monkeypatch.setattr(cpu, "CPUINFO", str(cpuinfo))
    described = cpu.describe()
    assert described["cpu"] == "AMD EPYC" and (described["family"], described["model"]) == ("25", "17")
    assert described["vector_flags"] == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]


def test_auto_on_gpus_is_bfloat16_from_ampere_on_else_float16_with_loss_scaling():
    assert precision.resolve("auto", _with_gpus((8, 0), (9, 0)))[0] == "mixed_bfloat16"
    policy, why = precision.resolve("auto", _with_gpus((7, 0)))
    assert policy == "mixed_float16" and "(7, 0) lacks bfloat16" in why and "loss scaling" in why
    assert precision.resolve("auto", _with_gpus((8, 6), (7, 5)))[0] == "mixed_float16"  # all or none


def test_xla_is_on_by_default_on_gpus_only_and_never_over_several_replicas():
    assert precision.xla_default(None, _with_gpus((8, 0))) == (True, "auto: on GPUs")
    assert precision.xla_default(None, CPU)[0] is False
    assert precision.xla_default(True, CPU) == (True, "requested")
    assert precision.xla_default(False, _with_gpus((8, 0))) == (False, "requested")
    # a compiled step over two devices fails ("Trying to access resource ... located in device CPU:1 from
    # device CPU:0" on two logical CPUs; keras-team/keras#18145 on GPUs): several replicas run uncompiled
    on, why = precision.xla_default(None, _with_gpus((8, 0), (8, 0)), replicas=2)
    assert not on and why.startswith("off over 2 replicas")
    on, why = precision.xla_default(True, CPU, replicas=4)
    assert not on and why.endswith("--jit-compile ignored")


# Every spelling glue-tf accepted before the vocabulary was one, and the short ones, with what it means.
OLD_SPELLINGS = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16", "fp32": "float32", "bf16": "bfloat16",
                 "fp16": "float16", "auto": "auto", "float32": "float32", "bfloat16": "bfloat16"}


@pytest.mark.parametrize("spelled, word", OLD_SPELLINGS.items())
def test_every_command_and_the_service_read_each_spelling_as_the_same_word(spelled, word, monkeypatch):
    from glue_tf import cli
    from serving.settings import Settings

    parser = cli.build_parser()
    train = parser.parse_args(["train", "--task", "rte", "--precision", spelled])
    assert cli._train_config(train).precision == word
    assert parser.parse_args(["train-all", "--precision", spelled]).precision == word
    for command in (["predict", "--model", "m", "--input", "i", "--output", "o"], ["evaluate", "--model", "m"]):
        assert parser.parse_args([*command, "--precision", spelled]).precision == word
    monkeypatch.setenv("GLUE_TF_PRECISION", spelled.upper())
    assert precision.from_environment() == word
    assert Settings.from_env().precision == word
    decided = dataclasses.replace(AMX, onednn=True)
    assert precision.resolve(spelled, decided) == precision.resolve(word, decided)  # the same policy


def test_a_bad_spelling_is_refused_with_the_words_in_every_command(capsys):
    from glue_tf import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["predict", "--model", "m", "--input", "i", "--output", "o",
                                       "--precision", "half"])
    assert "'half': expected one of auto, float32, bfloat16, float16" in capsys.readouterr().err


def test_the_export_records_each_signature_s_policy_from_the_vocabulary():
    from glue_tf import export_measure
    from glue_tf.exports import signatures

    assert export_measure.POLICIES == {signatures.DEFAULT: "float32", signatures.COMPILED: "float32",
                                       signatures.BFLOAT16: "mixed_bfloat16"}


def _mirrored_step(preset, policy):
    done = subprocess.run([sys.executable, str(MIRRORED_STEP), str(preset), policy], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.long  # two logical CPUs in a subprocess, about a minute: make test-long keeps make test under 15 minutes
def test_the_multi_replica_loop_on_two_logical_cpus_scales_the_float16_loss(tiny_preset):
    """MirroredStrategy over two logical CPU devices runs the GPU path's loop (glue_tf.loop). Under
    mixed_float16 the loss must be scaled before the gradients, because the LossScaleOptimizer that
    compile() wraps around ours unscales what it is given: unscaled, the gradients reach Adam divided by
    32,768, below its epsilon, and the weights barely move."""
    float32, float16 = _mirrored_step(tiny_preset, "float32"), _mirrored_step(tiny_preset, "mixed_float16")
    assert float32["replicas"] == float16["replicas"] == 2
    assert float16["optimizer"] == "LossScaleOptimizer"
    assert 0.5 < float16["change"] / float32["change"] < 2.0, (float16, float32)
    # The loop runs fit's own step: on one global batch split over the two replicas, it lands where fit on
    # one replica does (in float32, to rounding; a weight moves about 1e-3 in that step).
    assert float32["fit_moved"] > 1e-4 and float32["fit_apart"] < 1e-3 * float32["fit_moved"], float32
    # Over the two replicas the fused AdamW (raw kernels) lands where Keras' AdamW does, in float64 to 1e-10.
    adamw = float32["adamw_float64"]
    assert adamw["moved"] > 1e-2 and adamw["relative"] < 1e-10, adamw


def test_strategy_follows_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_workers() == 0
    strategy, name = distribute.select_strategy()
    assert name.startswith("default strategy") and distribute.is_chief(strategy)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.cluster_workers() == 2
