"""The export folders of a run: which versions are complete, their metadata and dev scores.

``<out>/models/<task>/<version>/`` holds one version (:mod:`glue_tf.export`
writes it). A version is complete once its ``saved_model.pb`` and
``metadata.json`` are both there: the writer renames a finished version into
place, so a hidden ``.tmp-*`` folder or a half-copied one is never listed. The
service, ``predict``/``evaluate`` and a resumed run all read versions here, so
that rule lives once. Pure Python: reading it loads no TensorFlow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from glue_tf.run_dir import RunDir  # the run folder's layout (standard library only)

METADATA_FILE = "metadata.json"
WEIGHTS_DIGEST = "weights_sha256"
SCORE_UNIT = "points"
VERSION = re.compile(r"^\d+$")


def models_dir(out_dir) -> Path:
    """The exports' folder of a run (``--out``): what the service serves."""
    return RunDir(out_dir).models


def task_dir(out_dir, task_name: str) -> Path:
    return models_dir(out_dir) / task_name


def versions(model_root: Path) -> list[int]:
    """Complete versions under ``<out>/models/<task>``, oldest first."""
    if not model_root.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_root.iterdir()
        if VERSION.match(entry.name) and (entry / "saved_model.pb").is_file() and (entry / METADATA_FILE).is_file()
    )


def latest(out_dir, task_name: str) -> Path | None:
    """The newest complete version of ``task_name`` under a run folder, or None."""
    root = task_dir(out_dir, task_name)
    found = versions(root)
    return root / str(found[-1]) if found else None


def read_metadata(version_dir) -> dict:
    return json.loads((Path(version_dir) / METADATA_FILE).read_text(encoding="utf-8"))


def dev_metrics(metadata: dict) -> dict | None:
    """The export's dev metrics in points (exports written before ``score_unit`` held fractions)."""
    values = metadata.get("dev_metrics")
    if not values:
        return None
    scale = 1.0 if metadata.get("score_unit") == SCORE_UNIT else 100.0
    return {key: scale * value for key, value in values.items()}


def latest_holding(out_dir, task_name: str, digest: str) -> Path | None:
    """The latest version if it serves exactly these weights (``WEIGHTS_DIGEST``), else None.

    A run killed after its export was renamed into place but before it finished
    resumes with the weights it had exported: it must not write them again as a
    second version.
    """
    path = latest(out_dir, task_name)
    if path is None:
        return None
    return path if read_metadata(path).get(WEIGHTS_DIGEST) == digest else None
