"""The Python API: lazy imports, a loaded export that answers raw text without KerasHub, official scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_IMPORT_ONLY = """
import sys
import glue_tf
print(glue_tf.__version__, "tensorflow" in sys.modules, "keras_hub" in sys.modules)
"""

_PREDICT = """
import json, sys
import glue_tf
predictor = glue_tf.load({export!r})
answers = predictor.predict([("the cat sat", "a cat sat"), {{"sentence1": "dogs run", "sentence2": "cats sleep"}}])
print(json.dumps({{"answers": answers, "task": predictor.task.name, "keras_hub": "keras_hub" in sys.modules}}))
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_import_glue_tf_loads_neither_tensorflow_nor_keras_hub():
    version, tensorflow, keras_hub = _run(_IMPORT_ONLY).split()
    assert version != "0+unknown" and (tensorflow, keras_hub) == ("False", "False")


def test_unknown_names_still_raise_attribute_error():
    import glue_tf

    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        glue_tf.trian  # noqa: B018
    assert {"train", "train_all", "load", "score"} <= set(dir(glue_tf))


def test_the_api_names_stay_functions_once_the_training_modules_are_loaded():
    """A submodule named like an API function would replace it on import (``glue_tf.train`` once was)."""
    import importlib
    import pkgutil

    import glue_tf
    from glue_tf import api

    for module in pkgutil.walk_packages(glue_tf.__path__, "glue_tf."):
        importlib.import_module(module.name)
    for name in ("train", "train_all", "load", "score"):
        assert getattr(glue_tf, name) is getattr(api, name), name


def test_score_is_the_official_metric_in_points():
    import glue_tf

    # MRPC: 3 of 4 right; precision 2/3 and recall 1 on the positive class give F1 0.8.
    assert glue_tf.score("mrpc", [1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx({"accuracy": 75.0, "f1": 80.0})


@pytest.mark.slow
def test_a_loaded_export_answers_raw_text_without_keras_hub(tiny_exports):
    found = json.loads(_run(_PREDICT.format(export=str(tiny_exports / "models" / "mrpc"))))
    assert found["task"] == "mrpc" and not found["keras_hub"]
    for answer in found["answers"]:
        assert answer["label"] in {"not_equivalent", "equivalent"}
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_names_the_text_it_cannot_read(tiny_exports):
    import glue_tf
    from glue_tf.errors import GlueTfError

    predictor = glue_tf.load(tiny_exports / "models" / "mrpc" / "1")
    with pytest.raises(GlueTfError, match=r"text 1: mrpc takes 2 string\(s\)"):
        predictor.predict([("a", "b"), "only one sentence"])


def test_unknown_training_fields_are_named_before_anything_runs():
    import glue_tf
    from glue_tf.errors import GlueTfError

    with pytest.raises(GlueTfError, match=r"unknown training fields \['learning_rat'\]"):
        glue_tf.train("rte", glue_dir="nowhere", learning_rat=1e-4)
