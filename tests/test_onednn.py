"""oneDNN is turned on before TensorFlow loads where TensorFlow would leave it off, and never against the user."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glue_tf import onednn
from glue_tf.precision import Machine


def _cpu(flags: str, arch: str = "x86_64") -> Machine:
    return Machine(cpu_model="AMD EPYC", cpu_flags=frozenset(flags.split()), arch=arch)


def test_an_avx2_cpu_gets_onednn_turned_on():
    environ = {}
    line = onednn.enable(environ, _cpu("fpu sse4_2 avx avx2 fma"))
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert line.startswith("oneDNN on: set by glue-tf")


def test_tensorflow_s_own_default_is_left_alone():
    environ = {}
    line = onednn.enable(environ, _cpu("avx2 avx512f avx512_vnni"))
    assert environ == {}
    assert "TensorFlow's default on a CPU with avx512_vnni" in line


@pytest.mark.parametrize("value, state", [("0", "off"), ("1", "on")])
def test_the_user_s_choice_wins(value, state):
    environ = {"TF_ENABLE_ONEDNN_OPTS": value}
    line = onednn.enable(environ, _cpu("avx2"))
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}
    assert line.startswith(f"oneDNN {state}")


def test_no_avx2_no_change():
    environ = {}
    onednn.enable(environ, _cpu("sse4_2"))
    assert environ == {}


def test_avx2_off_x86_is_left_to_tensorflow():
    environ = {}
    line = onednn.enable(environ, _cpu("avx2", arch="aarch64"))
    assert environ == {} and line == "oneDNN: TensorFlow's default on this aarch64 CPU (no avx2 flag seen)"


def test_tensorflow_really_runs_onednn_after_enable():
    """In a fresh process: enable(), then import TensorFlow and ask it whether oneDNN is on."""
    code = ("import os; from glue_tf import onednn; from glue_tf.precision import Machine; "
            "line = onednn.enable(os.environ, Machine.from_cpu()); "
            "from tensorflow.python.util import _pywrap_util_port as port; "
            "print(port.IsMklEnabled()); print(line)")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    enabled, line = done.stdout.strip().splitlines()[-2:]
    expected = {}
    expected_line = onednn.enable(expected, Machine.from_cpu())
    assert line == expected_line
    if expected.get("TF_ENABLE_ONEDNN_OPTS") == "1" or "TensorFlow's default on a CPU with" in expected_line:
        assert enabled == "True"


@pytest.mark.parametrize("command", [  # predict: test_tf_startup.py
    ["train", "--task", "rte", "--glue-dir", "none", "--out", "run"],
])
def test_computing_commands_choose_before_tensorflow_loads_and_say_so(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    glue_tf = Path(sys.executable).with_name("glue-tf")
    done = subprocess.run([str(glue_tf), *command], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]  # no export or data there: the error comes after the choice
    assert f"glue-tf: {onednn.enable({}, Machine.from_cpu())}" in done.stderr.splitlines()
