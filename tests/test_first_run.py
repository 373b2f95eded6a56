"""A newcomer's first run: data from tfds by default (and a fast, one-line failure without it),
`glue-tf serve`, and `make quickstart`. Real subprocesses, real network refusals, real gunicorn."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.server import free_port, request

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
# A proxy nobody listens on: every download through requests/urllib3 is refused at once, as offline.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def _make(*args: str, env: dict, cwd=REPO, timeout: float = 120) -> subprocess.CompletedProcess:
    """``make`` in the repository with this interpreter's virtual environment, never reinstalling it."""
    command = ["make", "--no-print-directory", "-C", str(REPO), f"VENV={VENV}", "-o", f"{VENV}/.installed", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_all_with_no_network_and_no_data_fails_fast_naming_the_three_ways(tmp_path):
    unset = ("GLUE_DIR", "TFDS_MANUAL_DIR", "GLUE_TF_TEST_GLUE_DIR", "GLUE_TF_TEST_TFDS_MANUAL_DIR")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(NO_NETWORK, TFDS_DATA_DIR=str(tmp_path / "tensorflow_datasets"), CUDA_VISIBLE_DEVICES="")
    out = tmp_path / "run"
    started = time.monotonic()
    result = _make("train-all", f"OUT={out}", "TASKS=rte,cola", env=env)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("glue-tf: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    error = errors[0]
    assert "tfds glue/" in error and "cannot be reached" in error
    assert "tfds with network" in error and "GLUE_DIR=" in error and "TFDS_MANUAL_DIR=" in error
    assert "Traceback" not in result.stderr
    # Before any model was built: nothing trained, no checkpoint folder, and no minutes of tfds retries.
    assert not (out / "work").exists() and not (out / "models").exists()
    assert elapsed < 90, f"took {elapsed:.0f}s"


def test_makefile_data_defaults_tfds_and_passes_the_offline_choices_through():
    unset = ("GLUE_DIR", "TFDS_MANUAL_DIR", "GLUE_TF_TEST_GLUE_DIR", "GLUE_TF_TEST_TFDS_MANUAL_DIR")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    plain = _make("-n", "train-all", env=env).stdout
    assert "--glue-dir" not in plain and "--tfds-manual-dir" not in plain  # tfds, downloading
    chosen = _make("-n", "train-all", "GLUE_DIR=/data/glue", "TFDS_MANUAL_DIR=/data/zips", env=env).stdout
    assert "--glue-dir /data/glue" in chosen and "--tfds-manual-dir /data/zips" in chosen
    tests = _make("-n", "test", env=env).stdout
    assert "GLUE_TF_TEST_GLUE_DIR=../shared/glue_data" in tests
    assert "GLUE_TF_TEST_TFDS_MANUAL_DIR=../shared/glue_tfds_manual" in tests
    assert "--glue-dir" not in tests and " GLUE_DIR=" not in tests


def test_serve_flags_become_the_gunicorn_settings():
    from serving import cli

    args = argparse.Namespace(model_dir="runs/x", state_dir=None, port=9001, bind=None, workers=3, threads=None)
    env = cli.environment(args, base={"GLUE_TF_BIND": "10.0.0.1:80", "GLUE_TF_THREADS": "4"})
    assert env == {"GLUE_TF_MODEL_DIR": "runs/x", "PORT": "9001", "GLUE_TF_WORKERS": "3", "GLUE_TF_THREADS": "4"}
    assert cli.command()[-2:] == ["-c", str(REPO / "serving" / "gunicorn.conf.py")]


@pytest.mark.slow
def test_glue_tf_serve_becomes_gunicorn_and_stops_on_sigterm(tiny_exports, tmp_path):
    port = free_port()
    command = [str(VENV / "bin" / "glue-tf"), "serve", "--model-dir", str(tiny_exports), "--state-dir",
               str(tmp_path / "state"), "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and process.poll() is None and status != 200:
            try:
                status, _, _ = request(f"http://127.0.0.1:{port}", "GET", "/readyz", timeout=5)
            except OSError:
                time.sleep(0.5)
        assert status == 200, (tmp_path / "serve.log").read_text()[-3000:]
        status, _, body = request(f"http://127.0.0.1:{port}", "POST", "/predict/rte",
                                  {"instances": [{"sentence1": "A man eats.", "sentence2": "Someone eats."}]})
        assert status == 200 and body["predictions"][0]["label"] in ("entailment", "not_entailment")
        # exec: the process we started is gunicorn's master itself, so our signal reaches it.
        assert "gunicorn" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.long
def test_make_quickstart_trains_serves_answers_and_stops(glue_dir, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "quickstart"
    result = _make("quickstart", f"GLUE_DIR={glue_dir}", f"QUICKSTART_OUT={out}", env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout
    assert text.count("HTTP 200") == 2
    own, tf_serving = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert own["task"] == "sst2" and [p["label"] in ("negative", "positive") for p in own["predictions"]] == [True] * 2
    assert len(tf_serving["predictions"]) == 2 and len(tf_serving["predictions"][0]["probabilities"]) == 2
    assert "service stopped" in text
    assert (out / "models" / "sst2" / "1" / "saved_model.pb").is_file()
    served = (out / "quickstart-serve.log").read_text()
    assert "Shutting down: Master" in served  # the service it started is gone
