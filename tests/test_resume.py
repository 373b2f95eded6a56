"""A real training process killed mid-run resumes from its last checkpoint when started again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from glue_tf.tasks import TASKS
from support import kept_predictions
from support.glue_files import SIZES

pytestmark = pytest.mark.slow
TRAIN_EXAMPLES = SIZES["sst2"]["train"]  # all of the generated SST-2 train split, each epoch


def _command(preset, glue_dir, out):
    return [
        sys.executable, "-m", "glue_tf.cli", "train", "--task", "sst2", "--glue-dir", str(glue_dir),
        "--backbone", str(preset), "--epochs", "3", "--batch-size", "16", "--max-train-examples", str(TRAIN_EXAMPLES),
        "--max-eval-examples", "64", "--precision", "float32", "--out", str(out),
    ]


@pytest.mark.long  # kills a real training process and trains again (80 s): make test stays under 15 minutes
def test_killed_training_resumes_from_its_checkpoint(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    state_path = out / "work" / "sst2" / "checkpoint" / "state.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(_command(tiny_preset, glue_dir, out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    killed_after = None
    while time.monotonic() < deadline and first.poll() is None:
        if state_path.is_file():
            epoch = json.loads(state_path.read_text())["epoch"]
            if epoch < 3:
                os.killpg(first.pid, signal.SIGKILL)
                killed_after = epoch
                break
        time.sleep(0.05)
    first.wait(timeout=30)
    assert killed_after is not None, "training finished (or never checkpointed) before it could be killed"
    assert not (out / "models" / "sst2").exists()

    second = subprocess.run(_command(tiny_preset, glue_dir, out), capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from the checkpoint of epoch {killed_after}" in second.stdout
    result = json.loads((out / "work" / "sst2" / "result.json").read_text())
    assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3]  # each epoch once, none repeated
    assert (out / "models" / "sst2" / "1" / "saved_model.pb").is_file()
    # The best epoch may have come before the kill: its kept dev predictions are still the best weights'.
    assert kept_predictions.components(TASKS["sst2"], out / "work" / "sst2") == pytest.approx(result["dev"])


@pytest.mark.long
def test_a_kill_inside_an_epoch_loses_at_most_the_steps_since_the_last_step_checkpoint(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    state_path = out / "work" / "sst2" / "checkpoint" / "state.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = _command(tiny_preset, glue_dir, out) + ["--checkpoint-every", "20"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    deadline = time.monotonic() + 240
    killed_at = None
    while time.monotonic() < deadline and first.poll() is None:
        if state_path.is_file():
            state = json.loads(state_path.read_text())
            if state.get("step"):
                os.killpg(first.pid, signal.SIGKILL)
                killed_at = (state["epoch"], state["step"])
                break
        time.sleep(0.02)
    first.wait(timeout=30)
    assert killed_at is not None, "no step checkpoint was written before the run ended"

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    epoch, step = killed_at
    assert f"resuming from the checkpoint of epoch {epoch}, step {step}" in second.stdout
    seed = json.loads((out / "work" / "sst2" / "seed.json").read_text())
    assert [e["epoch"] for e in seed["epochs"]] == [1, 2, 3]
    # The resumed run trained only what was left: the rest of that epoch and the epochs after it.
    assert seed["examples_trained"] == TRAIN_EXAMPLES * (3 - epoch) - step * 16
    assert (out / "models" / "sst2" / "1" / "saved_model.pb").is_file()
