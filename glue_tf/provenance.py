"""What an export was made with: library versions and the backbone's origin.

A SavedModel outlives the environment that wrote it. Whoever serves it must
match TF Serving (or TensorFlow plus tensorflow-text) to what wrote it, and
whoever quotes its scores must name the checkpoint and its licence, so both
are recorded in ``metadata.json`` and the model card rather than left to memory.
"""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata as package_metadata
from pathlib import Path

# The distributions whose versions decide whether an export loads and computes the same elsewhere.
DISTRIBUTIONS = ("tensorflow", "tensorflow-text", "keras", "keras-hub", "glue-tf")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def library_versions() -> dict[str, str | None]:
    """``{distribution: version}`` for :data:`DISTRIBUTIONS` and Python (None where not installed)."""
    versions = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def _front_matter_field(readme: Path, field: str) -> str | None:
    """One top-level ``field: value`` of a Hugging Face model card's YAML front matter."""
    if not readme.is_file():
        return None
    match = _FRONT_MATTER.match(readme.read_text(encoding="utf-8", errors="replace"))
    if not match:
        return None
    for line in match.group(1).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == field and value.strip():
            return value.strip().strip("'\"")
    return None


def _json_field(path: Path, *keys: str) -> str | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in keys:
        if isinstance(found, dict) and found.get(key):
            return str(found[key])
    return None


def backbone_origin(spec: str, folder: Path | None) -> dict:
    """Where the backbone came from: the ``--backbone`` value, and, for a local folder, the
    checkpoint's own name and licence as its files state them (None where they do not)."""
    origin = {"spec": spec, "source": "folder" if folder is not None else
              ("handle" if "://" in spec else "KerasHub preset")}
    if folder is None:
        return {**origin, "checkpoint": spec, "license": None}
    folder = Path(folder)
    export = _export_metadata(folder)
    if export is not None:  # an export's keras/ preset: the checkpoint and licence are its backbone's
        parent = export.get("backbone") or {}
        return {**origin, "checkpoint": parent.get("checkpoint") or folder.parent.name, "license": parent.get("license"),
                "fine_tuned_from": {"task": export.get("task"), "version": export.get("version"),
                                    "export": str(folder.parent)}}
    name = (_json_field(folder / "config.json", "_name_or_path", "name")
            or _json_field(folder / "metadata.json", "name") or folder.name)
    return {**origin, "checkpoint": name, "license": _front_matter_field(folder / "README.md", "license")}


def _export_metadata(folder: Path) -> dict | None:
    """The ``metadata.json`` of the glue-tf export whose Keras preset ``folder`` is (``<version>/keras``), else None."""
    from glue_tf.keras_preset import FOLDER

    if folder.name != FOLDER:
        return None
    try:
        found = json.loads((folder.parent / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "task" in found else None
