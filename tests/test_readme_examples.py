"""The documents' examples, run as written, do what the documents show.

Requests: every ```sh block of README.md and docs/SERVING.md that is followed
by a ```json block is one example. The shell block runs (bash, in a scratch
folder shared by all examples in order, ``localhost:8080`` pointed at a
gunicorn on a free loopback port over tiny untrained exports of the tasks the
examples use) and must print one JSON document shaped like the block after it.
Numbers, and label names of a task's label set, may differ from run to run;
keys, types, list lengths and every other string must match. No `curl` in
either file escapes this check, so the documents cannot drift from the service.

``pytest tests/test_readme_examples.py --update-examples`` rewrites each
```json block from the live answer instead, with the scratch folders' paths
replaced (the model folder by ``runs/latest``, as ``glue-tf serve --model-dir
runs/latest`` names it; any other temporary path by its last component), so
no stale answer and no machine's path survives in the documents.

Python: README.md's one ```python block runs as written in a scratch folder
whose ``glue_data`` is the tests' small GLUE folder, with the real default
backbone.
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
DOCUMENTS = (REPO / "README.md", REPO / "docs" / "SERVING.md")
# A ```sh block (no ``` inside) right before a ```json block.
EXAMPLE = re.compile(r"```sh\n(?P<command>(?:(?!```).)*)```[ \t]*\n\s*```json\n(?P<response>(?:(?!```).)*)```", re.S)
TEXT_BLOCK = re.compile(r"```text\n.*?```", re.S)
PYTHON_BLOCK = re.compile(r"```python\n(?P<code>.*?)```", re.S)
TASKS = ("sst2", "mrpc", "stsb", "rte")
# Values that are the deployment's, not the API's: where the export lies and what it was trained from
# (any string), and a trained export's dev metrics (the tiny exports were never evaluated: null).
ANY_STRING, NULL_WHEN_UNTRAINED = {"path", "backbone", "signature", "signature_reason"}, {"dev_metrics"}
# Inside strings, job ids and numbers (times, counts) differ from run to run.
HEX_ID, NUMBER = re.compile(r"\b[0-9a-f]{32}\b"), re.compile(r"[0-9]+")
WIDTH = 100  # an object or list that fits on a line of this width is written on one line


def examples(document: Path) -> list[re.Match]:
    return list(EXAMPLE.finditer(document.read_text()))


CASES = [(document, index) for document in DOCUMENTS for index in range(len(examples(document)))]


def _label_names() -> set[str]:
    from glue_tf.tasks import TASKS as REGISTRY

    return {name for task in REGISTRY.values() for name in task.label_names}


def _normal(text: str) -> str:
    return NUMBER.sub("N", HEX_ID.sub("ID", text))


def assert_same_shape(expected, actual, labels: set[str], path: str = "$") -> None:
    """``actual`` has ``expected``'s structure; numbers, and labels among ``labels``, may differ."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != the document's {sorted(expected)}"
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
        assert actual == expected, f"{path}: {actual!r} != the document's {expected!r}"
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r} is no number"
    else:
        assert isinstance(actual, str), f"{path}: {actual!r} is no string"
        same = _normal(actual) == _normal(expected) or (expected in labels and actual in labels)
        assert same, f"{path}: {actual!r} != the document's {expected!r}"


def render(value, indent: int = 0, used: int = 0) -> str:
    """JSON as the documents show it: two-space indents, anything that fits on its line on one line.

    ``used``: the columns a key already takes on the line where ``value`` starts.
    """
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or indent + used + len(flat) <= WIDTH:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {render(item, indent + 2, len(json.dumps(key)) + 2)}"
                 for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(inner + render(item, indent + 2) for item in value) + "\n" + " " * indent + "]"


def scrub(value, model_dir: Path, scratch: Path):
    """``value`` with the model folder shown as ``runs/latest`` and any other scratch path by its last part."""
    if isinstance(value, dict):
        return {key: scrub(item, model_dir, scratch) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, model_dir, scratch) for item in value]
    if isinstance(value, str):
        value = value.replace(str(model_dir), "runs/latest")
        return re.sub(re.escape(str(scratch)) + r"[^\s\"']*/([^/\s\"']+)", r"\1", value)
    return value


def rewrite_answer(document: Path, index: int, answer: str) -> None:
    """Replaces the ``index``-th example's ```json block of ``document`` with ``answer``."""
    text = document.read_text()
    match = examples(document)[index]
    start, end = match.span("response")
    document.write_text(text[:start] + answer + "\n" + text[end:])


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_curl_is_an_example(document):
    text = document.read_text()
    outside = TEXT_BLOCK.sub("", EXAMPLE.sub("", text))  # printed output, not requests
    stray = [line.strip() for line in outside.splitlines() if re.search(r"\bcurl\b\s", line) and "`curl" not in line]
    assert not stray, f"requests in {document.name} that no test runs (put each in a ```sh + ```json pair): {stray}"
    checked = "".join(match["command"] for match in examples(document))
    assert "[...]" not in checked and "<id>" not in checked and "open http" not in checked.replace("xdg-open", "")
    for match in examples(document):
        json.loads(match["response"])  # the documents' own answers are JSON


def test_the_documents_have_examples():
    counts = {document.name: len(examples(document)) for document in DOCUMENTS}
    assert counts["README.md"] >= 2 and counts["SERVING.md"] >= 10, counts


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory, tiny_exports):
    """The service over tiny exports of the examples' tasks: the suite's shared ones, and SST-2 made here."""
    from support.tiny import make_tiny_exports

    root = tmp_path_factory.mktemp("readme")
    run = root / "run"
    make_tiny_exports(root / "sst2", ("sst2",))
    for task in TASKS:
        shutil.copytree((root / "sst2" if task == "sst2" else tiny_exports) / "models" / task, run / "models" / task)
    server = Server(run, root / "state", workers=1).wait_until_up()
    server.model_dir, server.scratch = run, tmp_path_factory.getbasetemp()
    server.workdir = root / "shell"  # one folder for all examples, in order, as a reader's shell
    server.workdir.mkdir()
    yield server
    server.stop()


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.slow
@pytest.mark.parametrize("document, index", CASES, ids=[f"{d.name}-{i}" for d, i in CASES])
def test_example_answers_as_shown(readme_server, request, document, index):
    match = examples(document)[index]
    command = match["command"]
    script = command.replace("localhost:8080", f"127.0.0.1:{readme_server.port}")
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=readme_server.workdir, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{document.name}: {command}\n{result.stderr[-2000:]}"
    try:
        actual = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"{document.name}: {command}\nprinted no single JSON document: {result.stdout[-2000:]!r}")
    if request.config.getoption("update_examples"):
        rewrite_answer(document, index, render(scrub(actual, readme_server.model_dir, readme_server.scratch)))
        return
    assert_same_shape(json.loads(match["response"]), actual, _label_names())


def test_render_writes_what_json_reads_and_folds_short_lists():
    value = {"outputs": {"probabilities": [[0.25, 0.75]], "label_id": [1]}, "names": ["a" * 60, "b" * 60]}
    text = render(value)
    assert json.loads(text) == value
    assert text.splitlines() == ['{', '  "outputs": {"probabilities": [[0.25, 0.75]], "label_id": [1]},',
                                 '  "names": [', f'    "{"a" * 60}",', f'    "{"b" * 60}"', '  ]', '}']


def test_scrub_leaves_no_scratch_path(tmp_path):
    model_dir = tmp_path / "readme0" / "run"
    answer = {"path": f"{model_dir}/models/rte/1", "backbone": f"{tmp_path}/tiny_run0/run/tiny_bert_preset",
              "why": f"loaded from {tmp_path}/x/y/z.pb today"}
    assert scrub(answer, model_dir, tmp_path) == {"path": "runs/latest/models/rte/1", "backbone": "tiny_bert_preset",
                                                  "why": "loaded from z.pb today"}


def python_example() -> str:
    blocks = PYTHON_BLOCK.findall((REPO / "README.md").read_text())
    assert len(blocks) == 1, f"README.md has {len(blocks)} ```python blocks; this test runs exactly one"
    return blocks[0]


@pytest.mark.long  # trains the real MiniLM: make test-long
def test_readme_python_example_runs_as_written(tmp_path, small_glue_dir):
    """The README's Python API example, with the real default backbone, on the tests' small GLUE folder."""
    (tmp_path / "glue_data").symlink_to(small_glue_dir)
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    exports = sorted(tmp_path.glob("runs/*/models/rte/1/saved_model.pb"))
    assert exports, f"the example exported nothing under {tmp_path}/runs: {result.stdout[-2000:]}"
    assert "'label':" in result.stdout and "'accuracy':" in result.stdout, result.stdout[-2000:]
