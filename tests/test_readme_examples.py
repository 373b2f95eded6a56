"""The README's request examples, run as written against a live service, answer what the README shows.

Every ```sh block of README.md that is followed by a ```json block is one
example: the shell block runs (bash, in a scratch folder, ``localhost:8080``
pointed at a gunicorn on a free loopback port over tiny exports of the tasks
the README uses) and must print one JSON document shaped like the block after
it. Numbers, and label names of a task's label set, may differ (the README
shows answers of trained models, the test asks untrained tiny ones, which
have no dev metrics and lie elsewhere); keys, types, list lengths and every
other string must match. And no `curl` in the
README escapes this check, so the README cannot drift from the service.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.server import Server

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# A ```sh block (no ``` inside) right before a ```json block.
EXAMPLE = re.compile(r"```sh\n(?P<command>(?:(?!```).)*)```[ \t]*\n\s*```json\n(?P<response>(?:(?!```).)*)```", re.S)
TEXT_BLOCK = re.compile(r"```text\n.*?```", re.S)
TASKS = ("sst2", "mrpc", "stsb", "rte")
# Inside strings, job ids and numbers (times, counts) differ from run to run.
# Values that are the deployment's, not the API's: where the export lies and what it was trained from
# (any string), and a trained export's dev metrics (the tiny exports were never evaluated: null).
ANY_STRING, NULL_WHEN_UNTRAINED = {"path", "backbone", "signature", "signature_reason"}, {"dev_metrics"}
HEX_ID, NUMBER = re.compile(r"\b[0-9a-f]{32}\b"), re.compile(r"[0-9]+")


def examples() -> list[tuple[str, str]]:
    return [(m["command"], m["response"]) for m in EXAMPLE.finditer(README.read_text())]


def _label_names() -> set[str]:
    from glue_tf.tasks import TASKS as REGISTRY

    return {name for task in REGISTRY.values() for name in task.label_names}


def _normal(text: str) -> str:
    return NUMBER.sub("N", HEX_ID.sub("ID", text))


def assert_same_shape(expected, actual, labels: set[str], path: str = "$") -> None:
    """``actual`` has ``expected``'s structure; numbers, and labels among ``labels``, may differ."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != README's {sorted(expected)}"
        for key in expected:
            if key in ANY_STRING and isinstance(expected[key], str) and isinstance(actual[key], str):
                continue
            if key in NULL_WHEN_UNTRAINED and actual[key] is None:
                continue
            assert_same_shape(expected[key], actual[key], labels, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{path}: expected a list of {len(expected)}, got {actual!r}")
        for index, (want, got) in enumerate(zip(expected, actual)):
            assert_same_shape(want, got, labels, f"{path}[{index}]")
    elif isinstance(expected, bool) or expected is None:
        assert actual == expected, f"{path}: {actual!r} != README's {expected!r}"
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r} is no number"
    else:
        assert isinstance(actual, str), f"{path}: {actual!r} is no string"
        same = _normal(actual) == _normal(expected) or (expected in labels and actual in labels)
        assert same, f"{path}: {actual!r} != README's {expected!r}"


def test_the_readme_has_examples_and_every_curl_is_one_of_them():
    found = examples()
    assert len(found) >= 10
    checked = "".join(command for command, _ in found)
    outside = TEXT_BLOCK.sub("", EXAMPLE.sub("", README.read_text()))  # printed output, not requests
    stray = [line.strip() for line in outside.splitlines() if re.search(r"\bcurl\b\s", line) and "`curl" not in line]
    assert not stray, f"requests in README.md that no test runs (put each in a ```sh + ```json pair): {stray}"
    assert "[...]" not in checked and "<id>" not in checked and "open http" not in checked.replace("xdg-open", "")
    for _, response in found:
        json.loads(response)  # the README's own answers are JSON


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory, tiny_exports):
    """The service over tiny exports of the README's tasks: the suite's shared ones, and SST-2 made here."""
    from support.tiny import make_tiny_exports

    root = tmp_path_factory.mktemp("readme")
    run = root / "run"
    make_tiny_exports(root / "sst2", ("sst2",))
    for task in TASKS:
        shutil.copytree((root / "sst2" if task == "sst2" else tiny_exports) / "models" / task, run / "models" / task)
    server = Server(run, root / "state", workers=1).wait_until_up()
    server.workdir = root / "shell"  # one folder for all examples, in order, as a reader's shell
    server.workdir.mkdir()
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(examples())))
def test_readme_example_answers_as_shown(readme_server, index):
    command, response = examples()[index]
    script = command.replace("localhost:8080", f"127.0.0.1:{readme_server.port}")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=readme_server.workdir, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    try:
        actual = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"{command}\nprinted no single JSON document: {result.stdout[-2000:]!r}")
    assert_same_shape(json.loads(response), actual, _label_names())
