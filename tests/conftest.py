"""Shared fixtures: where the real GLUE data lives, and a tfds data dir built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/support


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


@pytest.fixture(scope="session")
def small_glue_dir(glue_dir, tmp_path_factory) -> Path:
    """The first rows of the real RTE and WNLI files (40 train, 24 dev, 16 test), for runs of seconds."""
    root = tmp_path_factory.mktemp("small_glue")
    for task in ("RTE", "WNLI"):
        (root / task).mkdir()
        for name, rows in (("train.tsv", 40), ("dev.tsv", 24), ("test.tsv", 16)):
            lines = (glue_dir / task / name).read_text(encoding="utf-8").splitlines(keepends=True)
            (root / task / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory, glue_dir) -> Path:
    """A 2-layer, 32-wide BERT saved as a local Keras preset, vocabulary from real GLUE text."""
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS
    from support.tiny import make_bert_preset, vocabulary_from

    source = TsvSource(glue_dir)
    texts = []
    for name in ("cola", "mrpc", "stsb", "rte", "sst2"):
        task = TASKS[name]
        texts += [e[f] for e in source.examples(task, "train")[:400] for f in task.text_features]
    return make_bert_preset(tmp_path_factory.mktemp("tiny_bert"), vocabulary_from(texts, size=1500))


@pytest.fixture(scope="session")
def trained_exports(tmp_path_factory, tiny_preset, glue_dir) -> Path:
    """A training run's output folder with tiny models for CoLA, MRPC, STS-B and RTE, trained a few steps."""
    from glue_tf.config import TrainConfig
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS
    from glue_tf.train import train_task

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(backbone=str(tiny_preset), epochs=1, batch_size=8, max_train_examples=32,
                         max_eval_examples=32, precision="float32", learning_rate=1e-3, max_seq_length=64)
    source = TsvSource(glue_dir)
    for name in ("cola", "mrpc", "stsb", "rte"):
        train_task(TASKS[name], source, config, out, verbose=0)
    return out


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory) -> Path:
    """A run folder with untrained tiny models for CoLA, MRPC, STS-B and RTE (``models/<task>/1/``).

    Built from sentences written in ``support.tiny``, not GLUE data: works in a
    clone without ``../shared``. Answers are random but deterministic, and
    differ between texts.
    """
    from support.tiny import make_tiny_exports

    return make_tiny_exports(tmp_path_factory.mktemp("tiny_run") / "run", ("cola", "mrpc", "stsb", "rte"))


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster (``support.postgres.PostgresCluster``) for the session.

    Skips where Debian's ``postgresql`` package is missing, fails under ``CI`` (.ci/run installs it).
    A test may ``kill()`` it; the next ``postgres_url`` restarts it on the same port.
    """
    from support.postgres import MISSING, PostgresCluster

    if not PostgresCluster.available():
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING} (.ci/run installs Debian's postgresql package)")
        pytest.skip(f"{MISSING} (apt-get install postgresql)")
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres) -> str:
    """libpq URL of a fresh empty database (``test_<uuid hex>``) on the session cluster, dropped after."""
    if not postgres.running:
        postgres.restart()
    url = postgres.new_database()
    yield url
    if postgres.running:
        try:
            postgres.drop_database(url.rsplit("/", 1)[1])
        except Exception:
            pass
