"""Training under faults: killed at exact and at random points, full disks, unwritable folders.

Long: run by `make test-long` (and CI), not by `make test`.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glue_tf.exports import saved_model, store

pytestmark = pytest.mark.long
DRIVER = Path(__file__).resolve().parent / "support" / "crash_driver.py"


def _args(preset, glue_dir, out, *extra):
    return ["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--backbone", str(preset), "--epochs", "2",
            "--batch-size", "16", "--max-train-examples", "480", "--max-eval-examples", "48", "--precision",
            "float32", "--checkpoint-every", "8", "--out", str(out), *extra]


def _glue_tf(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "glue_tf.cli", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


def _crash(point, args):
    return subprocess.run([sys.executable, str(DRIVER), point, "--", *args], capture_output=True, text=True,
                          timeout=600)


def _assert_complete(out, version="1"):
    path = store.latest(out, "sst2")
    assert path is not None and path.name == version
    signature, _ = saved_model.load(path)
    import tensorflow as tf

    assert signature(sentence=tf.constant(["a fine film"]))["label_id"].shape == (1,)
    assert not list((out / "models" / "sst2").glob(".tmp-*"))
    seed = json.loads((out / "work" / "sst2" / "seed.json").read_text())
    assert [e["epoch"] for e in seed["epochs"]] == [1, 2]


def test_kill_while_writing_a_checkpoint_then_resume(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    crashed = _crash("checkpoint", _args(tiny_preset, glue_dir, out))
    assert crashed.returncode == -signal.SIGKILL
    state = out / "work" / "sst2" / "checkpoint" / "state.json"
    assert not state.exists()  # the half-committed checkpoint is not named by any state
    resumed = _glue_tf(_args(tiny_preset, glue_dir, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_complete(out)


def test_kill_during_export_never_replaces_a_good_export(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    crashed = _crash("export", _args(tiny_preset, glue_dir, out))
    assert crashed.returncode == -signal.SIGKILL
    assert store.latest(out, "sst2") is None and list((out / "models" / "sst2").glob(".tmp-*"))
    assert _glue_tf(_args(tiny_preset, glue_dir, out)).returncode == 0
    _assert_complete(out)  # resumed after training: exported once, the leftover removed

    # Retraining (another seed: new weights) over a good export and dying while exporting leaves
    # the good one serving.
    again = _crash("export", _args(tiny_preset, glue_dir, out, "--seed", "7", "--overwrite"))
    assert again.returncode == -signal.SIGKILL
    assert store.latest(out, "sst2").name == "1"
    signature, metadata = saved_model.load(store.latest(out, "sst2"))
    assert metadata["version"] == 1


def test_kill_after_the_export_is_committed_resumes_without_a_second_version(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    crashed = _crash("exported", _args(tiny_preset, glue_dir, out))
    assert crashed.returncode == -signal.SIGKILL
    assert store.latest(out, "sst2").name == "1" and not (out / "work" / "sst2" / "result.json").exists()
    resumed = _glue_tf(_args(tiny_preset, glue_dir, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "already holds these weights" in (out / "run.log").read_text()
    _assert_complete(out)  # still version 1, and nothing else
    assert store.versions(store.task_dir(out, "sst2")) == [1]
    assert (out / "work" / "sst2" / "result.json").is_file()


def test_killed_at_random_moments_still_ends_with_a_complete_export(tiny_preset, glue_dir, tmp_path):
    """Kills land at random fractions of an uninterrupted run's time on this machine (start-up,
    training, checkpointing, export, test predictions), so they hit every phase on a fast or a slow
    machine alike. A resumed run is shorter than that time and may outlive its kill: it is checked
    and, until two kills have landed, a fresh run starts, so the test never passes by luck."""
    started = time.monotonic()
    assert _glue_tf(_args(tiny_preset, glue_dir, tmp_path / "uninterrupted")).returncode == 0
    duration = time.monotonic() - started

    rng = random.Random(1234)
    kills, completed, out = 0, 0, None
    for _ in range(8):
        out = out or tmp_path / f"run{completed}"
        process = subprocess.Popen([sys.executable, "-m", "glue_tf.cli", *_args(tiny_preset, glue_dir, out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            process.wait(timeout=rng.uniform(0.1, 0.9) * duration)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        assert process.returncode == 0, process.stderr.read()[-2000:]
        _assert_complete(out)
        completed, out = completed + 1, None
        if kills >= 2:
            break
    if out is not None:  # the kills left it; one run to the end
        final = _glue_tf(_args(tiny_preset, glue_dir, out))
        assert final.returncode == 0, final.stderr[-2000:]
        _assert_complete(out)
    assert kills >= 2, f"only {kills} kill(s) landed in 8 runs (uninterrupted: {duration:.0f} s)"


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
    # Below the tiny model's first checkpoint (~560 KB); 1 MiB let a whole run, export included, fit.
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))


def test_full_disk_is_a_clear_error_not_a_traceback(tiny_preset, glue_dir, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "glue_tf.cli", *_args(tiny_preset, glue_dir, out)],
                            capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "glue-tf: error: cannot write" in result.stderr and "disk full" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_folder_is_refused_before_training(tiny_preset, glue_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    result = _glue_tf(_args(tiny_preset, glue_dir, blocker / "run"))
    assert result.returncode == 2
    assert f"cannot write to {blocker / 'run'}" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60  # refused up front, not after training


def test_too_little_space_is_refused_before_training(monkeypatch, tmp_path):
    import shutil

    from glue_tf import storage

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10 << 30, 10 << 30, 100 << 20))
    with pytest.raises(storage.OutputError, match="has 100 MiB free; training this model needs about 780 MiB"):
        storage.check_free_space(tmp_path, 22_713_216)
