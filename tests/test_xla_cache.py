"""The XLA cache folder survives processes, is chosen before TensorFlow loads, and never against the user."""

import os
import subprocess
import sys

import pytest

from glue_tf import xla_cache
from glue_tf.precision import Machine


def _cpu(flags: str, model: str = "AMD EPYC") -> Machine:
    return Machine(cpu_model=model, cpu_flags=frozenset(flags.split()))


def test_the_default_folder_is_per_tensorflow_version_and_cpu_under_the_user_cache(tmp_path):
    avx2, avx512 = _cpu("avx avx2 fma"), _cpu("avx2 avx512f avx512_bf16")
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TF_XLA_FLAGS": "--tf_xla_auto_jit=2"}
    line = xla_cache.enable(environ, avx2)
    flag, folder = environ["TF_XLA_FLAGS"].split()[1].split("=", 1)
    assert environ["TF_XLA_FLAGS"].startswith("--tf_xla_auto_jit=2 ")  # the user's other flags stay
    assert flag == xla_cache.FLAG and line == f"XLA cache: {folder}" == xla_cache.describe(environ)
    assert folder.startswith(str(tmp_path / "cache" / "glue-tf" / "xla" / "tf-2."))
    other = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    xla_cache.enable(other, avx512)
    assert other["TF_XLA_FLAGS"] != f"{xla_cache.FLAG}={folder}"  # another CPU never loads this one's code
    renamed = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    xla_cache.enable(renamed, _cpu("avx avx2 fma", model="Intel Xeon"))
    assert renamed["TF_XLA_FLAGS"] != f"{xla_cache.FLAG}={folder}"  # nor one with the same flags and another name
    again = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    xla_cache.enable(again, _cpu("fma avx2 avx"))
    assert again["TF_XLA_FLAGS"] == f"{xla_cache.FLAG}={folder}"  # the same CPU finds its folder again


def test_the_setting_names_the_folder_or_turns_it_off(tmp_path):
    cpu = _cpu("avx2")
    environ = {"GLUE_TF_XLA_CACHE": str(tmp_path / "mine")}
    xla_cache.enable(environ, cpu)
    assert environ["TF_XLA_FLAGS"].startswith(f"{xla_cache.FLAG}={tmp_path / 'mine'}/tf-")
    off = {"GLUE_TF_XLA_CACHE": "off"}
    assert xla_cache.enable(off, cpu) == "XLA cache: off (GLUE_TF_XLA_CACHE=off)"
    assert "TF_XLA_FLAGS" not in off and xla_cache.describe(off) == "XLA cache: off"


def test_a_folder_that_cannot_be_written_leaves_the_cache_off(tmp_path):
    """TensorFlow would fail every XLA compilation that cannot write its entry."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    environ = {"GLUE_TF_XLA_CACHE": str(blocker / "xla")}
    line = xla_cache.enable(environ, _cpu("avx2"))
    assert line.startswith(f"XLA cache: off (cannot write to {blocker / 'xla'}/tf-") and "TF_XLA_FLAGS" not in environ


def test_a_cache_the_user_gave_tensorflow_is_left_alone(tmp_path):
    environ = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}=/theirs", "GLUE_TF_XLA_CACHE": str(tmp_path)}
    xla_cache.enable(environ, _cpu("avx2"))
    assert environ["TF_XLA_FLAGS"] == f"{xla_cache.FLAG}=/theirs"


PROGRAM = """
import os
from glue_tf import xla_cache
from glue_tf.precision import Machine
xla_cache.enable(os.environ, Machine.from_cpu())
import tensorflow as tf
tf.function(lambda x: tf.nn.softmax(tf.matmul(x, x)), jit_compile=True)(tf.ones((8, 8))).numpy()
"""


@pytest.mark.long  # two fresh TensorFlow processes, about 18 s on 2 cores: make test is near its 15 minutes
def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    """TensorFlow writes an entry by renaming a finished temporary file: an entry the second
    process had to compile again would come back as a new file (a new inode)."""
    env = {**os.environ, "GLUE_TF_XLA_CACHE": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "0",
           "TF_CPP_VMODULE": "device_executable_persistor=1"}
    env.pop("TF_XLA_FLAGS", None)

    def entries():
        return {path.name: path.stat().st_ino for path in tmp_path.rglob("*.pb")}

    subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, capture_output=True, timeout=120)
    first = entries()
    assert len(first) == 1, first
    second = subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, capture_output=True, text=True,
                            timeout=120)
    assert entries() == first
    assert "Loading cached entry for" in second.stderr
