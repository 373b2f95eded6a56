"""The service under pressure: request ids and JSON request logs, graceful shutdown, restarts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error

import pytest

from support.server import Server, request

pytestmark = pytest.mark.slow

COLA = [{"sentence": f"The {w} sat on the mat while the dog slept quietly."} for w in ("cat", "bird", "man", "boy")] * 8


def _log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_request_ids_json_logs_and_the_bearer_token(trained_exports, tmp_path):
    server = Server(trained_exports, tmp_path / "state", workers=1, GLUE_TF_API_TOKEN="s3cret").wait_until_up()
    try:
        score = {"instances": COLA[:2], "labels": [1, 0]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, answer_headers, body = request(server.base, "POST", "/score/cola", score, headers=headers)
            assert status == 401 and body["error"]["code"] == "unauthorized"
            assert answer_headers["WWW-Authenticate"] == "Bearer"
        status, _, _ = request(server.base, "GET", "/jobs/" + "0" * 32)
        assert status == 401
        status, _, body = request(server.base, "POST", "/score/cola", score, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and body["examples"] == {"validation": 2}

        status, headers, _ = request(server.base, "POST", "/predict/cola", {"instances": COLA[:3]},
                                     headers={"X-Request-ID": "client-42"})
        assert status == 200 and headers["X-Request-ID"] == "client-42"
        status, headers, _ = request(server.base, "POST", "/predict/nope", {"instances": COLA[:1]},
                                     headers={"X-Request-ID": "bad id\twith tab"})
        assert status == 404 and len(headers["X-Request-ID"]) == 32  # not echoed: a fresh id
        made = headers["X-Request-ID"]
        time.sleep(0.5)
        lines = {line["request_id"]: line for line in _log_lines(server)}
        assert lines["client-42"]["task"] == "cola" and lines["client-42"]["instances"] == 3
        assert lines["client-42"]["status"] == 200 and lines["client-42"]["latency_ms"] > 0
        assert lines[made]["status"] == 404 and lines[made]["path"] == "/predict/nope"
    finally:
        server.stop()


def test_sigterm_finishes_every_request_in_flight(trained_exports, tmp_path):
    server = Server(trained_exports, tmp_path / "state", workers=2, GLUE_TF_GRACEFUL_TIMEOUT=30).wait_until_up()
    answered, failed, stop = [], [], threading.Event()
    term_sent = {}

    def client(number):
        sent = 0
        while not stop.is_set():
            request_id = f"c{number}-{sent}"
            sent += 1
            started = time.monotonic()
            try:
                status, headers, _ = request(server.base, "POST", "/predict/cola", {"instances": COLA},
                                             headers={"X-Request-ID": request_id}, timeout=60)
                answered.append((request_id, status, started, time.monotonic()))
            except (urllib.error.URLError, ConnectionError, OSError) as error:
                failed.append((request_id, repr(error), started))
                if time.monotonic() > term_sent.get("at", float("inf")):
                    return  # the server is going away; stop this client

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    term_sent["at"] = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=90) == 0
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
    server.stop()

    assert answered and all(status == 200 for _, status, _, _ in answered)
    # Requests in flight when SIGTERM came were finished, not cut off.
    assert any(start < term_sent["at"] < end for _, _, start, end in answered)
    # Every request the service took in (logged) got its answer at the client.
    logged = {line["request_id"] for line in _log_lines(server) if line["path"] == "/predict/cola"}
    assert logged <= {request_id for request_id, *_ in answered}
    # Failures are only requests sent after the server stopped listening.
    assert all(started >= term_sent["at"] - 0.5 for _, _, started in failed), failed[:3]


@pytest.mark.long  # two service starts, about 30 s: make test-long keeps make test under 15 minutes
def test_finished_job_results_survive_a_restart(trained_exports, tmp_path):
    state = tmp_path / "state"
    body = {"task": "cola", "instances": COLA, "labels": [1, 0] * 16}
    server = Server(trained_exports, state, workers=1).wait_until_up()
    try:
        status, _, created = request(server.base, "POST", "/jobs", body)
        assert status == 202
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, _, job = request(server.base, "GET", f"/jobs/{created['id']}")
            if job["status"] == "succeeded":
                break
            time.sleep(0.3)
        assert job["status"] == "succeeded"
    finally:
        server.stop()
    again = Server(trained_exports, state, workers=1).wait_until_up()
    try:
        status, _, after = request(again.base, "GET", f"/jobs/{created['id']}")
        assert status == 200 and after["status"] == "succeeded" and after["result"] == job["result"]
    finally:
        again.stop()


COMPILED = "Compilation of XLA executable"  # TensorFlow's DeviceCompiler logs it (VLOG 1) once per XLA compile


@pytest.mark.long
def test_a_fresh_version_serves_its_first_requests_without_compiling(tiny_exports, tmp_path):
    """Warm-up replays the export's TF Serving warm-up file on the chosen (compiled) signature before
    ``/readyz`` turns green: the first requests, of every size up to 200 rows, compile nothing.

    The signal is TensorFlow's own log of each XLA compile (``TF_CPP_VMODULE=device_compiler=1``) in the
    worker's stderr, counted when the server is ready and again after the requests.
    """
    import shutil

    from glue_tf.exports import signatures

    version = shutil.copytree(tiny_exports / "models" / "cola" / "1", tmp_path / "run" / "models" / "cola" / "1")
    metadata = json.loads((version / "metadata.json").read_text())
    # The tiny export was not timed; give it the figures an export machine where XLA won records.
    for name, speed in ((signatures.DEFAULT, 1000.0), (signatures.COMPILED, 2500.0), (signatures.BFLOAT16, 900.0)):
        metadata["signatures"][name]["examples_per_second"] = speed
    metadata["measured_on"]["onednn"] = True  # timed on the kernels the server runs, whatever this process runs
    (version / "metadata.json").write_text(json.dumps(metadata))
    server = Server(tmp_path / "run", tmp_path / "state", workers=1, GLUE_TF_PRECISION="float32",
                    TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_compiler=1").wait_until_up()
    try:
        _, _, tasks = request(server.base, "GET", "/v1/tasks")
        assert tasks["tasks"]["cola"]["signature"] == signatures.COMPILED
        warmed = server.log().count(COMPILED)
        assert warmed == len(signatures.grid_shapes(metadata["max_seq_length"])), server.log()[-3000:]
        words = "the cat sat on the mat while the dog slept quietly in the warm sun".split()
        for rows in (1, 3, 8, 30, 64, 200):
            instances = [" ".join(words[: 1 + (i * 7) % len(words)] * (1 + i % 4)) for i in range(rows)]
            status, _, body = request(server.base, "POST", "/predict/cola", {"instances": instances})
            assert status == 200 and len(body["predictions"]) == rows, body
        assert server.log().count(COMPILED) == warmed, server.log()[-3000:]
    finally:
        server.stop()
