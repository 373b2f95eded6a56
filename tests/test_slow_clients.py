"""Slow clients (issue 26): 200 connections that send half a request must not starve the service.

An attacker on 127.0.0.2 onwards (one address per connection, so per-client limits do not
help) keeps 200 connections open that each send part of their headers, or a Content-Length
of 1000 and then 10 bytes, and reopens any the server closes. Meanwhile a valid client on
127.0.0.1 asks ``/healthz`` and ``/predict`` in turn, and each answer must come within 2 s.

The deployed stack (scripts/serve_deployed.py: nginx in front of gunicorn) passes. gunicorn
alone fails, and no setting of its own can fix that: a gthread worker hands a connection to a
thread as soon as it is readable, the thread then blocks reading the rest of the request, and
gunicorn has no read timeout (``timeout`` is the worker's heartbeat to the master), so 2
workers x 16 threads are held by 32 slow connections. More threads only raise the count an
attacker needs; the async workers (gevent, eventlet) would need monkey-patching that
TensorFlow's own threads do not survive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.server import REPO, Server, free_port, request

pytestmark = pytest.mark.long

SLOW_CONNECTIONS = 200
DEADLINE_S = 2.0
MEASURE_S = 20.0
TOKEN = "slow-client-test-token"
PARTIAL_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: glue-tf\r\nX-Slow: "
LYING_BODY = (b"POST /predict/cola HTTP/1.1\r\nHost: glue-tf\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n" + b'{"instance')


class DeployedStack:
    """``scripts/serve_deployed.py`` on a free port, as `make serve-deployed` runs it."""

    def __init__(self, model_dir: Path, state_dir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir.parent / f"deployed-{self.port}.log"
        env = {**os.environ, "GLUE_TF_STATE_DIR": str(state_dir), "GLUE_TF_WORKERS": "2",
               "GLUE_TF_API_TOKEN": TOKEN, "CUDA_VISIBLE_DEVICES": ""}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "serve_deployed.py"), "--model-dir", str(model_dir),
             "--port", str(self.port)], cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_until_up(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if request(self.base, "GET", "/readyz", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the deployed stack is not up: {self.log_path.read_text()[-3000:]}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self._log.close()


class SlowAttacker(threading.Thread):
    """Keeps ``count`` half-sent requests open from 127.0.0.2 onwards, reopening those the server closes."""

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.sockets: dict[int, socket.socket] = {}
        self.opened = 0
        self.stopping = threading.Event()

    def open(self, index: int) -> None:
        sock = socket.socket()
        sock.bind((f"127.0.0.{2 + index}", 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(PARTIAL_HEADERS if index % 2 else LYING_BODY)
        except OSError:
            sock.close()
            return
        sock.setblocking(False)
        self.sockets[index] = sock
        self.opened += 1

    def closed_by_server(self, index: int) -> bool:
        try:
            return self.sockets[index].recv(4096) == b""  # an answer (408, 400) is read and the socket kept
        except BlockingIOError:
            return False
        except OSError:
            return True

    def run(self):
        while not self.stopping.is_set():
            for index in range(self.count):
                if index not in self.sockets or self.closed_by_server(index):
                    self.sockets.pop(index, None)
                    self.open(index)
            self.stopping.wait(0.5)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)
        for sock in self.sockets.values():
            sock.close()


def valid_client(base: str, seconds: float) -> list[tuple[str, object, float]]:
    """``(path, status or error, seconds)`` for each request a client on 127.0.0.1 makes in turn."""
    answers = []
    body = {"instances": ["the service answers a valid client"]}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for method, path, payload in (("GET", "/healthz", None), ("POST", "/predict/cola", body)):
            started = time.monotonic()
            try:
                status = request(base, method, path, payload, timeout=DEADLINE_S + 3)[0]
            except OSError as error:
                status = type(error).__name__
            answers.append((path, status, time.monotonic() - started))
    return answers


def attacked(base: str, port: int) -> tuple[list, int]:
    attacker = SlowAttacker(port, SLOW_CONNECTIONS)
    attacker.start()
    try:
        deadline = time.monotonic() + 30
        while len(attacker.sockets) < SLOW_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(attacker.sockets) == SLOW_CONNECTIONS, f"only {len(attacker.sockets)} slow connections open"
        return valid_client(base, MEASURE_S), attacker.opened
    finally:
        attacker.stop()


def check(answers: list, opened: int, stack: str) -> None:
    late = [a for a in answers if a[1] != 200 or a[2] > DEADLINE_S]
    worst = max(seconds for _, _, seconds in answers)
    summary = (f"{stack}: {len(answers)} valid requests under {SLOW_CONNECTIONS} slow connections "
               f"({opened} opened in all), {len(late)} failed or over {DEADLINE_S} s, slowest {worst:.2f} s")
    print(summary)
    assert not late, f"{summary}; first: {late[:5]}"


@pytest.mark.parametrize("stack", [
    "deployed",
    pytest.param("gunicorn-alone", marks=pytest.mark.xfail(
        strict=True, reason="a gthread worker's thread blocks on a half-sent request, and gunicorn has no read "
        "timeout: 2 workers x 16 threads are held by 32 slow connections (module docstring)")),
])
def test_a_valid_client_is_answered_within_2_s_under_200_slow_connections(tiny_exports, tmp_path, stack):
    if stack == "deployed":
        from test_container import nginx_or_skip

        nginx_or_skip()
        server = DeployedStack(tiny_exports, tmp_path / "state")
    else:
        server = Server(tiny_exports, tmp_path / "state", workers=2)
    try:
        server.wait_until_up()
        assert request(server.base, "POST", "/predict/cola", {"instances": ["warm"]})[0] == 200
        answers, opened = attacked(server.base, int(server.base.rsplit(":", 1)[1]))
        check(answers, opened, stack)
        # Still whole afterwards: the slow connections left nothing behind.
        assert request(server.base, "GET", "/readyz", timeout=DEADLINE_S)[0] == 200
    finally:
        server.stop()
