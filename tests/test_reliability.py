"""The service under load and hostile input (long: `make test-long`, CI; figures in docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.server import Server

pytestmark = pytest.mark.long
REPO = Path(__file__).resolve().parents[1]


def test_20000_requests_from_32_clients_with_a_worker_killed(trained_exports, glue_dir, tmp_path):
    report = tmp_path / "load.jsonl"
    result = subprocess.run(
        [sys.executable, "bench/load_test.py", "--model-dir", str(trained_exports), "--glue-dir", str(glue_dir),
         "--requests", "20000", "--clients", "32", "--workers", "3", "--kill-worker-after", "20",
         "--json-out", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )
    summary = json.loads(report.read_text().splitlines()[-1])
    assert result.returncode == 0, (summary["checks"], result.stderr[-2000:])
    assert summary["http_5xx"] == 0 and summary["mismatches"] == 0
    assert summary["tasks"] == ["cola", "mrpc", "rte", "stsb"]
    killed = summary["killed_worker"]
    assert killed["replaced"] and killed["failed_requests"] <= 32
    assert summary["ok"] + summary["connection_errors"] == 20000


def test_schemathesis_fuzzes_the_api_from_its_own_openapi(trained_exports, tmp_path):
    server = Server(trained_exports, tmp_path / "state", workers=2).wait_until_up()
    workers = set(server.worker_pids())
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.base}/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
             "response_schema_conformance", "--max-examples", "40", "--seed", "1", "--no-color",
             # /score/{task} takes a union of shapes per task; most random bodies fail its schema
             "--suppress-health-check", "filter_too_much",
             "--request-timeout", "60"],
            capture_output=True, text=True, timeout=1500,
            cwd=tmp_path,  # its .schemathesis/ cache stays out of the repository
        )
        assert result.returncode == 0, result.stdout[-5000:]
        assert set(server.worker_pids()) == workers  # no worker died
        assert "Traceback" not in server.log()
    finally:
        server.stop()
