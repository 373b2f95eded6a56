"""Two MultiWorkerMirroredStrategy workers on loopback ports train in lockstep (CPU only)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
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
