import json
import subprocess
import sys
from pathlib import Path

import pytest

from glue_tf import distribute, precision

MIRRORED_STEP = Path(__file__).parent / "support" / "mirrored_step.py"


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    return str(path)


def test_auto_picks_bfloat16_only_where_the_cpu_has_it(tmp_path):
    policy, why = precision.resolve("auto", gpus=[], cpuinfo=_cpuinfo(tmp_path, "fpu avx2 avx512f amx_bf16 amx_tile"))
    assert policy == "mixed_bfloat16" and "amx_bf16" in why
    policy, why = precision.resolve("auto", gpus=[], cpuinfo=_cpuinfo(tmp_path, "fpu avx avx2 fma"))
    assert policy == "float32" and "neither" in why
    assert precision.resolve("mixed_float16", gpus=[]) == ("mixed_float16", "requested")
    with pytest.raises(ValueError, match="--precision must be one of"):
        precision.resolve("int8")


def test_auto_on_gpus_is_bfloat16_from_ampere_on_else_float16_with_loss_scaling(tmp_path):
    no_bf16_cpu = _cpuinfo(tmp_path, "fpu avx2")
    assert precision.resolve("auto", gpus=[(8, 0), (9, 0)], cpuinfo=no_bf16_cpu)[0] == "mixed_bfloat16"
    policy, why = precision.resolve("auto", gpus=[(7, 0)], cpuinfo=no_bf16_cpu)
    assert policy == "mixed_float16" and "(7, 0) lacks bfloat16" in why and "loss scaling" in why
    assert precision.resolve("auto", gpus=[(8, 6), (7, 5)], cpuinfo=no_bf16_cpu)[0] == "mixed_float16"  # all or none


def test_xla_is_on_by_default_on_gpus_only_and_never_over_several_replicas():
    assert precision.xla_default(None, gpus=[(8, 0)]) == (True, "auto: on GPUs")
    assert precision.xla_default(None, gpus=[])[0] is False
    assert precision.xla_default(True, gpus=[]) == (True, "requested")
    assert precision.xla_default(False, gpus=[(8, 0)]) == (False, "requested")
    # a compiled step over two devices fails ("Trying to access resource ... located in device CPU:1 from
    # device CPU:0" on two logical CPUs; keras-team/keras#18145 on GPUs): several replicas run uncompiled
    on, why = precision.xla_default(None, gpus=[(8, 0), (8, 0)], replicas=2)
    assert not on and why.startswith("off over 2 replicas")
    on, why = precision.xla_default(True, gpus=[], replicas=4)
    assert not on and why.endswith("--jit-compile ignored")


def _mirrored_step(preset, policy):
    done = subprocess.run([sys.executable, str(MIRRORED_STEP), str(preset), policy], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
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


def test_strategy_follows_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_workers() == 0
    strategy, name = distribute.select_strategy()
    assert name.startswith("default strategy") and distribute.is_chief(strategy)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.cluster_workers() == 2
