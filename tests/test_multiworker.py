"""Two MultiWorkerMirroredStrategy workers on loopback ports train in lockstep (CPU only)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Two TensorFlow workers training in lockstep: `make test-long` (CI runs it).
pytestmark = pytest.mark.long
JOB = Path(__file__).parent / "support" / "multiworker_job.py"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_finish_with_identical_weights(tiny_preset, glue_dir, tmp_path):
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        args = [sys.executable, str(JOB), str(index), *map(str, ports), str(tiny_preset), str(glue_dir),
                str(tmp_path / f"out{index}"), str(tmp_path / f"result{index}.json")]
        workers.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        cwd=Path(__file__).parents[1]))
    logs = [w.communicate(timeout=400)[0] for w in workers]
    for worker, log in zip(workers, logs):
        assert worker.returncode == 0, log[-3000:]
    results = [json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(2)]
    assert all(r["strategy"].startswith("MultiWorkerMirroredStrategy (2 workers, 2 replicas)") for r in results)
    assert results[0]["fingerprint"] == results[1]["fingerprint"]
    assert results[0]["export"] and results[1]["export"] is None  # only the chief writes


SCRIPT = Path(__file__).parents[1] / "scripts" / "train_two_hosts.sh"
STRATEGY = "MultiWorkerMirroredStrategy (2 workers, 2 replicas)"  # distribute.select_strategy's wording


def test_train_all_on_two_loopback_hosts_with_the_shell_recipe(tiny_preset, small_glue_dir, tmp_path):
    """`scripts/train_two_hosts.sh` itself, run twice as hosts 0 and 1 of HOSTS on loopback ports.

    The command line is DEPLOY.md's (`--glue-dir`, `--tasks`, `--epochs`, one shared `--out`), plus
    the tiny backbone, a small batch and float32. Only worker 0, the chief, exports and writes the report.
    """
    ports = _free_ports(2)
    out = tmp_path / "run"
    flags = ["--glue-dir", str(small_glue_dir), "--tasks", "rte", "--epochs", "1", "--out", str(out),
             "--backbone", str(tiny_preset), "--batch-size", "8", "--max-seq-length", "64", "--precision", "float32"]
    env = {**os.environ, "HOSTS": ",".join(f"127.0.0.1:{port}" for port in ports), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONUNBUFFERED": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log_paths = [tmp_path / f"host{index}.log" for index in range(2)]
    started = time.monotonic()
    deadline = started + 480
    workers = []
    try:
        for index, log_path in enumerate(log_paths):
            with open(log_path, "w") as log:  # files, not pipes: a full pipe would stall its worker and so both
                workers.append(subprocess.Popen(["bash", str(SCRIPT), *flags], env={**env, "INDEX": str(index)},
                                                stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1],
                                                start_new_session=True))
        for worker in workers:
            worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
    elapsed = time.monotonic() - started
    print(f"two-host train-all over loopback: {elapsed:.1f}s, exit codes {[w.returncode for w in workers]}")
    logs = [path.read_text(errors="replace") for path in log_paths]
    for index, (worker, log) in enumerate(zip(workers, logs)):
        assert worker.returncode == 0, f"host {index} exit {worker.returncode} after {elapsed:.0f}s:\n{log[-4000:]}"

    # Each ran the recipe as its own host of one 2-worker cluster.
    for index, log in enumerate(logs):
        assert f'"task": {{"type": "worker", "index": {index}}}' in log, log[-4000:]
        assert "Coordination agent has successfully connected" in log, log[-4000:]
    assert "/job:worker/replica:0/task:1 has connected to coordination service" in logs[0], logs[0][-4000:]
    # Only the chief logs (RunLog is off on other workers): the project's strategy wording is in its
    # output, run.log and the task's result. Worker 1 shows its part as Keras's epoch line, with the
    # same all-reduced loss. (The chief may log a CoordinationServiceError, "The tasks have crashed",
    # when worker 1, which does not export, exits first; its exit code is still 0, checked above.)
    assert f"rte: precision float32 (requested); {STRATEGY};" in logs[0], logs[0][-4000:]
    assert STRATEGY in (out / "run.log").read_text()
    assert json.loads((out / "work" / "rte" / "result.json").read_text())["strategy"] == STRATEGY
    assert "rte: precision" not in logs[1] and "exported" not in logs[1], logs[1][-4000:]
    epoch_lines = [re.findall(r"^(\d+)/\1 - .* loss: ([0-9.]+)$", log, re.M) for log in logs]
    assert len(epoch_lines[0]) == 1 and epoch_lines[0] == epoch_lines[1], epoch_lines

    # One export and one report, written by the chief.
    assert f"rte: exported {out / 'models' / 'rte' / '1'}" in logs[0], logs[0][-4000:]
    assert sorted(p.name for p in (out / "models" / "rte").iterdir()) == ["1"]
    assert list(out.rglob("report.json")) == [out / "report.json"]
    assert list(json.loads((out / "report.json").read_text())["tasks"]) == ["rte"]

    from glue_tf.exports import saved_model

    signature, metadata = saved_model.load(out / "models" / "rte" / "1")
    assert callable(signature)
    assert metadata["task"] == "rte" and metadata["version"] == 1
