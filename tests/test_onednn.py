"""oneDNN is turned on before TensorFlow loads where TensorFlow would leave it off, and never against the user."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glue_tf import onednn


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="utf-8")
    return str(path)


def test_an_avx2_cpu_gets_onednn_turned_on(tmp_path):
    environ = {}
    line = onednn.enable(environ, _cpuinfo(tmp_path, "fpu sse4_2 avx avx2 fma"), machine="x86_64")
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert line.startswith("oneDNN on: set by glue-tf")


def test_tensorflow_s_own_default_is_left_alone(tmp_path):
    environ = {}
    line = onednn.enable(environ, _cpuinfo(tmp_path, "avx2 avx512f avx512_vnni"), machine="x86_64")
    assert environ == {}
    assert "TensorFlow's default on a CPU with avx512_vnni" in line


@pytest.mark.parametrize("value, state", [("0", "off"), ("1", "on")])
def test_the_user_s_choice_wins(tmp_path, value, state):
    environ = {"TF_ENABLE_ONEDNN_OPTS": value}
    line = onednn.enable(environ, _cpuinfo(tmp_path, "avx2"), machine="x86_64")
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}
    assert line.startswith(f"oneDNN {state}")


def test_no_avx2_no_change(tmp_path):
    environ = {}
    onednn.enable(environ, _cpuinfo(tmp_path, "sse4_2"), machine="x86_64")
    assert environ == {}


def test_tensorflow_really_runs_onednn_after_enable():
    """In a fresh process: enable(), then import TensorFlow and ask it whether oneDNN is on."""
    code = ("from glue_tf import onednn; line = onednn.enable(); "
            "from tensorflow.python.util import _pywrap_util_port as port; "
            "print(port.IsMklEnabled()); print(line)")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    enabled, line = done.stdout.strip().splitlines()[-2:]
    expected = {}
    expected_line = onednn.enable(expected)
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
    assert f"glue-tf: {onednn.enable({})}" in done.stderr.splitlines()
