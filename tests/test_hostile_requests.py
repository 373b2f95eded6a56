"""Malformed requests get a 4xx, never a 500 and never a wait (issue 26): deep JSON, loose query numbers,
loose base64, chunked bodies that lie (against a real gunicorn, which parses the framing), and the
job store's byte quota; and a version copied in two steps is served once its copy is complete."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import time

import pytest

from serving.app import create_app
from serving.settings import Settings
from support.server import Server, request

DEPTH = 300  # past jsonschema_rs's recursion limit (256), under Python's json parser's


def _app(model_dir, state_dir, **overrides):
    settings = Settings.from_env(model_dir=str(model_dir), state_dir=str(state_dir), reload_interval=0,
                                 request_log=False, **overrides)
    app = create_app(settings)
    assert app.extensions["glue_tf"].wait_until_loaded(120)
    return app


@pytest.fixture(scope="module")
def client(tiny_exports, tmp_path_factory):
    return _app(tiny_exports, tmp_path_factory.mktemp("state"), job_store_max_bytes=20_000).test_client()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path,body", [
    ("/predict/cola", '{"instances": %s}'), ("/v1/models/cola:predict", '{"instances": %s}'),
    ("/v1/models/cola:classify", '{"examples": %s}'), ("/score/cola", '{"instances": %s, "labels": [0]}'),
    ("/score", '{"tasks": %s}'), ("/jobs", '{"task": "cola", "instances": %s, "labels": [0]}'),
])
def test_json_nested_too_deep_is_a_400_on_every_route(client, path, body):
    response = client.post(path, data=body % _deep(DEPTH), content_type="application/json")
    assert response.status_code == 400
    assert "GLUE_TF_MAX_JSON_DEPTH" in json.dumps(response.get_json())
    response = client.post(path, data=body % _deep(5000), content_type="application/json")  # past Python's own
    assert response.status_code == 400


def test_nesting_within_the_limit_is_validated_as_usual(client):
    response = client.post("/predict/cola", data='{"instances": %s}' % _deep(31), content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    assert client.post("/predict/cola", json={"instances": ["A cat sat."]}).status_code == 200


@pytest.mark.parametrize("limit", ["²", "٣", "1e3", "-1", "0", "1001", "9" * 40, " 5", "5 ", "0x10", ""])
def test_a_query_number_is_ascii_digits_in_range(client, limit):
    response = client.get(f"/jobs?limit={limit}")
    assert response.status_code == 400, limit
    assert "from 1 to 1000" in response.get_json()["error"]["message"]


def test_a_good_query_number_is_taken(client):
    assert client.get("/jobs?limit=1000").status_code == 200
    assert client.get("/jobs?limit=007").status_code == 200


@pytest.mark.parametrize("value", ["YWJj=", "YWJj==", "YWI", "YW Jj", "YWJj\n", "YW=j", "_-8="])
def test_base64_must_be_canonical(client, value):
    response = client.post("/v1/models/cola:predict", json={"instances": [{"b64": value}]})
    assert response.status_code == 400, value
    assert "invalid base64" in response.get_json()["error"]


def test_canonical_base64_is_decoded(client):
    encoded = base64.b64encode("Ünïcode text.".encode()).decode()
    response = client.post("/v1/models/cola:predict", json={"instances": [{"b64": encoded}]})
    assert response.status_code == 200


def test_the_job_store_quota_answers_429_then_413(client):
    """Quota 20,000 bytes: two 8 KB job bodies fit, a third waits (429), a body over the whole quota is 413."""
    client.application.extensions["glue_tf"].runner.stop()  # jobs stay queued, holding their bytes
    job = {"task": "cola", "instances": ["word " * 300] * 5, "labels": [0, 1, 0, 1, 0]}
    created = [client.post("/jobs", json=job) for _ in range(2)]
    assert [r.status_code for r in created] == [202, 202]
    full = client.post("/jobs", json=job)
    assert full.status_code == 429 and full.headers["Retry-After"]
    assert full.get_json()["error"]["code"] == "job_store_full"
    huge = client.post("/jobs", json={**job, "instances": ["word " * 1000] * 5})
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "job_too_large"
    for response in created:
        client.delete(response.get_json()["url"])
    assert client.post("/jobs", json=job).status_code == 202  # cancelled jobs gave their bytes back


# --- HTTP framing, which only a real gunicorn parses --------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_exports, tmp_path_factory):
    srv = Server(tiny_exports, tmp_path_factory.mktemp("state"), workers=1, GLUE_TF_MAX_BODY_BYTES=100_000)
    try:
        yield srv.wait_until_up()
    finally:
        srv.stop()


def _raw(server, payload: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Sends ``payload`` on a fresh connection; ``(status, whole answer)``, reading until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(payload)
        answer = b""
        started = time.monotonic()
        while b"\r\n\r\n" not in answer or not _complete(answer):
            assert time.monotonic() - started < timeout, f"no whole answer in {timeout} s: {answer[:200]!r}"
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    return int(answer.split(b" ", 2)[1]), answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _chunked(path: str, chunks: list[bytes], size_lines: list[bytes] | None = None, end: bytes = b"0\r\n\r\n") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    lines = size_lines or [b"%x" % len(chunk) for chunk in chunks]
    return head + b"".join(line + b"\r\n" + chunk + b"\r\n" for line, chunk in zip(lines, chunks)) + end


BODY = json.dumps({"instances": ["A cat sat on the mat."]}).encode()


@pytest.mark.slow
def test_a_chunked_body_within_the_limit_is_answered(server):
    status, answer = _raw(server, _chunked("/predict/cola", [BODY[:10], BODY[10:]]))
    assert status == 200 and b'"predictions"' in answer


@pytest.mark.slow
@pytest.mark.parametrize("size_line", [b"zz", b"-5", b"ffffffffffffffffffff", b"%x" % 200_000])
def test_a_bad_or_huge_chunk_size_is_a_400_at_once(server, size_line):
    started = time.monotonic()
    status, answer = _raw(server, _chunked("/predict/cola", [BODY], [size_line], end=b""))
    assert status == 400, answer[:300]
    assert b"chunk" in answer.lower()
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_a_413_never_a_truncated_200(server):
    piece = b" " * 30_000
    status, answer = _raw(server, _chunked("/predict/cola", [BODY[:-1], piece, piece, piece, piece, b"}"]))
    assert status == 413, answer[:300]
    assert b"connection: keep-alive" in answer.lower()  # read to its end, so the connection stays usable
    assert request(server.base, "GET", "/healthz")[0] == 200


@pytest.mark.slow
def test_every_framing_case_leaves_no_5xx_in_the_log(server):
    for payload in (_chunked("/jobs", [b"{"], [b"g"]), _chunked("/v1/models/cola:predict", [BODY], [b"1;\x01"])):
        status, _ = _raw(server, payload)
        assert 400 <= status < 500
    assert '"status": 5' not in server.log()


# --- a version copied in two steps ----------------------------------------------------------------
@pytest.mark.slow
def test_a_version_copied_in_two_steps_is_served_once_complete(tiny_exports, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_exports / "models" / "cola" / "1", run / "models" / "cola" / "1")
    source = tiny_exports / "models" / "cola" / "1"
    target = run / "models" / "cola" / "2"
    target.mkdir()
    for name in ("saved_model.pb", "metadata.json"):  # the first step: no variables yet
        shutil.copy2(source / name, target / name)
    srv = Server(run, tmp_path / "state", workers=1)
    try:
        srv.wait_until_up()
        rows = _wait_for(srv, lambda rows: any(r["version"] == "2" and r["state"] == "END" for r in rows))
        refused = next(r for r in rows if r["version"] == "2")
        assert refused["status"]["error_code"] == "UNKNOWN" and refused["status"]["error_message"]
        for item in source.iterdir():  # the second step
            if not (target / item.name).exists():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, target / item.name)
        _wait_for(srv, lambda rows: rows[0] == {"version": "2", "state": "AVAILABLE",
                                                "status": {"error_code": "OK", "error_message": ""}})
        status, _, body = request(srv.base, "POST", "/predict/cola", {"instances": ["A cat sat."]})
        assert status == 200 and body["model_version"] == 2
    finally:
        srv.stop()


def _wait_for(server, done, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = request(server.base, "GET", "/v1/models/cola")[2]["model_version_status"]
        if done(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)
