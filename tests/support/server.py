"""Start the real service (gunicorn with the project's config) on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(base: str, method: str, path: str, body=None, headers=None, raw: bytes | None = None, timeout=60):
    """``(status, headers, parsed JSON or text)`` for one HTTP request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(base + path, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, head, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, head, payload = error.code, dict(error.headers), error.read()
    text = payload.decode("utf-8", "replace")
    if head.get("Content-Type", "").startswith("application/json"):
        return status, head, json.loads(text)
    return status, head, text


class Server:
    def __init__(self, model_dir, state_dir, workers=2, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(state_dir).parent / f"gunicorn-{self.port}.log"
        environment = {
            **os.environ,
            "GLUE_TF_MODEL_DIR": str(model_dir),
            "GLUE_TF_STATE_DIR": str(state_dir),
            "GLUE_TF_BIND": f"127.0.0.1:{self.port}",
            "GLUE_TF_WORKERS": str(workers),
            "GLUE_TF_RELOAD_INTERVAL": "0.5",
            "CUDA_VISIBLE_DEVICES": "",
            **{k: str(v) for k, v in env.items()},
        }
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "serving" / "gunicorn.conf.py")],
            cwd=REPO, env=environment, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_until_up(self, timeout=180, ready=True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()[-3000:]}")
            try:
                status, _, _ = request(self.base, "GET", "/readyz" if ready else "/healthz", timeout=5)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not up after {timeout}s: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
