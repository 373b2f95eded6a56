import json

import pytest

from glue_tf import distribute, precision


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


def test_strategy_follows_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_workers() == 0
    strategy, name = distribute.select_strategy()
    assert name.startswith("default strategy") and distribute.is_chief(strategy)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.cluster_workers() == 2
