"""What hostile input and hostile files can reach: nothing outside the model folder, no unpickling."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from glue_tf.exports import store
from glue_tf.precision import Machine
from serving.model_registry import ModelRegistry

REPO = Path(__file__).resolve().parents[1]


def test_no_code_path_unpickles_or_evaluates_data():
    risky = re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|allow_pickle\s*=\s*True|\byaml\.load\(|\beval\(|"
                       r"\bexec\(|\bmarshal\.loads\(|\bshelve\.|safe_mode\s*=\s*False")
    offenders = [f"{path.relative_to(REPO)}:{n}" for folder in ("glue_tf", "serving")
                 for path in (REPO / folder).rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if risky.search(line)]
    assert offenders == []


@pytest.mark.slow
def test_a_version_linked_from_outside_the_model_folder_is_refused(trained_exports, tmp_path):
    models = tmp_path / "serve"
    shutil.copytree(trained_exports / "models" / "rte", models / "models" / "rte")
    outside = tmp_path / "elsewhere"
    shutil.copytree(store.latest(trained_exports, "rte"), outside)
    (models / "models" / "rte" / "2").symlink_to(outside, target_is_directory=True)

    registry = ModelRegistry(models, Machine())
    lines = registry.refresh()
    assert any("refused version 2 (resolves outside the model folder (symlink))" in line for line in lines)
    assert registry.get("rte").version == 1
