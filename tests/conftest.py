"""Shared fixtures: where the real GLUE data lives, and a tfds data dir built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def _data_path(env: str, default: Path) -> Path:
    return Path(os.environ.get(env) or default).resolve()


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = _data_path("GLUE_DIR", SHARED / "glue_data")
    if not (path / "CoLA" / "train.tsv").is_file():
        pytest.skip(f"real GLUE TSV data not found at {path} (set GLUE_DIR)")
    return path


@pytest.fixture(scope="session")
def tfds_manual_dir() -> Path:
    path = _data_path("TFDS_MANUAL_DIR", SHARED / "glue_tfds_manual")
    if not (path / "CoLA.zip").is_file():
        pytest.skip(f"official GLUE archives not found at {path} (set TFDS_MANUAL_DIR)")
    return path


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory) -> Path:
    """A fresh tfds data_dir, so the offline build itself is under test."""
    return tmp_path_factory.mktemp("tensorflow_datasets")
