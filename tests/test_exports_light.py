"""The service runs without the training stack: it enters glue_tf through its light modules only.

``import tensorflow`` loads Keras where it is installed, so Keras in ``sys.modules``
proves nothing; KerasHub must never be there, nor any glue_tf module that imports it.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Where serving may enter glue_tf (glue_tf/exports/ is the read side of exports).
ENTRIES = {"tasks", "metrics", "exports", "precision", "errors"}
# The one light module serving also names, and why: it imports nothing beyond the standard library,
# TensorFlow's start-up switches, or the modules above.
ALSO = {"tf_startup": "gunicorn's master sets oneDNN and the XLA cache before any worker imports TensorFlow"}
# What the read side may import besides ENTRIES: the run folder's layout (standard library only).
EXPORTS_ALSO = {"run_dir"}

# The training part of glue_tf (KerasHub, Keras models, tfds): none of it may load in the service.
TRAINING = {"export", "export_measure", "model", "training", "task_model", "backbones", "features", "loop",
            "optimization", "callbacks", "checkpoints", "evaluation", "suite", "data"}

SERVE_ONE_REQUEST = """
import json, os, sys
from serving.app import create_app
from serving.settings import Settings

settings = Settings.from_env(model_dir=sys.argv[1], state_dir=sys.argv[2], reload_interval=0, batching=False)
app = create_app(settings)
assert app.extensions["glue_tf"].wait_until_loaded(300), "the versions did not load"
response = app.test_client().post("/predict/cola", json={"instances": ["The cat sat.", "A dog barked."]})
print(json.dumps({"status": response.status_code, "body": response.get_json(),
                  "keras_hub": sorted(m for m in sys.modules if m.split(".")[0] == "keras_hub"),
                  "glue_tf": sorted(m for m in sys.modules if m.startswith("glue_tf."))}), flush=True)
os._exit(0)  # the service's watcher and job threads would keep the process alive
"""


def _glue_tf_imports(path: Path) -> set[str]:
    """The glue_tf modules a file imports (``glue_tf.x`` or ``from glue_tf import x``), by their first name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "glue_tf":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glue_tf."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("glue_tf.")}
    return found


def test_serving_enters_glue_tf_only_through_its_light_modules():
    named = {f"{path.relative_to(REPO)}: {module}" for path in sorted((REPO / "serving").rglob("*.py"))
             for module in _glue_tf_imports(path) if module not in ENTRIES | set(ALSO)}
    assert not named, f"serving imports glue_tf modules outside {sorted(ENTRIES)}: {sorted(named)}"


def test_the_exports_package_imports_no_training_module():
    named = {f"{path.name}: {module}" for path in sorted((REPO / "glue_tf" / "exports").glob("*.py"))
             for module in _glue_tf_imports(path) if module not in ENTRIES | EXPORTS_ALSO}
    assert not named, sorted(named)


def test_a_fresh_service_answers_a_prediction_without_importing_keras_hub(tiny_exports, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_exports / "models" / "cola", run / "models" / "cola")  # one task: one warm-up
    try:
        done = subprocess.run([sys.executable, "-c", SERVE_ONE_REQUEST, str(run), str(tmp_path / "state")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"the service did not answer: {str(error.stderr)[-3000:]}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200, seen["body"]
    predictions = seen["body"]["predictions"]
    assert len(predictions) == 2 and all(p["label"] in ("unacceptable", "acceptable") for p in predictions)
    assert seen["keras_hub"] == []
    loaded = {name.split(".")[1] for name in seen["glue_tf"]}
    assert {"exports", "precision"} <= loaded and not loaded & TRAINING, sorted(loaded & TRAINING)
