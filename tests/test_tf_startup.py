"""TensorFlow's start-up switches: set before it loads, each with its reason in what the user reads, untouched when too late."""

import json
import os
import subprocess
import sys
from pathlib import Path

from glue_tf import onednn
from glue_tf.precision import Machine

UNWRITABLE = "/proc/glue-tf-cannot-write"  # /proc refuses new folders, even to root


def _environment(**extra) -> dict:
    chosen_elsewhere = ("TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS")
    return {**{k: v for k, v in os.environ.items() if k not in chosen_elsewhere}, **extra}


def test_a_computing_command_prints_both_choices_with_their_reasons(tmp_path):
    glue_tf = Path(sys.executable).with_name("glue-tf")
    done = subprocess.run([str(glue_tf), "predict", "--model", "none", "--input", "in.tsv", "--output", "out.tsv"],
                          capture_output=True, text=True, env=_environment(GLUE_TF_XLA_CACHE=UNWRITABLE),
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]  # no export there: the error comes after the choices
    said = done.stderr.splitlines()
    assert f"glue-tf: {onednn.enable({}, Machine.from_cpu())}" in said
    assert any(line.startswith(f"glue-tf: XLA cache: off (cannot write to {UNWRITABLE}/") for line in said), said


def test_too_late_it_changes_nothing_and_says_so():
    code = ("import os, json, tensorflow; from glue_tf import tf_startup; before = dict(os.environ); "
            "chosen = tf_startup.prepare(); "
            "print(json.dumps([chosen, before == dict(os.environ), list(tf_startup.lines()) == list(chosen)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(),
                          timeout=120, check=True)
    (onednn_line, cache_line), unchanged, kept = json.loads(done.stdout.strip().splitlines()[-1])
    assert unchanged and kept
    assert onednn_line.startswith("oneDNN ") and "TensorFlow was loaded before glue-tf could set it" in onednn_line
    assert cache_line == "XLA cache: off (TensorFlow was loaded before glue-tf could set it)"
