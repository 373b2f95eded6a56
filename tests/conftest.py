"""Shared fixtures: a GLUE folder the tests write, the real GLUE data where it is, tiny models.

Tests read the generated folder (``glue_dir``), so the suite runs in a fresh
clone. Only tests of agreement with the real GLUE files (the TSV reader against
tfds, real counts, file quirks) ask for ``real_glue_dir`` or
``tfds_manual_dir``, which skip, naming the missing data, where it is absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/support

# The real data: these variables, else ../shared next to the repository (this project's workspace).
REAL_DATA = {
    "GLUE_TF_TEST_GLUE_DIR": REPO_ROOT.parent / "shared" / "glue_data",
    "GLUE_TF_TEST_TFDS_MANUAL_DIR": REPO_ROOT.parent / "shared" / "glue_tfds_manual",
}


def pytest_addoption(parser):
    parser.addoption("--update-examples", action="store_true",
                     help="rewrite the ```json answers in README.md and docs/SERVING.md from a live run "
                          "(tests/test_readme_examples.py) instead of comparing them")


def _real_data(variable: str, marker: str, what: str, why: str) -> Path:
    path = Path(os.environ.get(variable) or REAL_DATA[variable]).resolve()
    if not (path / marker).is_file():
        pytest.skip(f"{what} not found at {path} (set {variable}): {why}")
    return path


@pytest.fixture(scope="session", autouse=True)
def xla_cache_dir(tmp_path_factory) -> Path:
    """The XLA cache (``glue_tf.xla_cache``) of every CLI and service process the tests start: one
    temporary folder for the session, not the user's ``~/.cache``."""
    os.environ.setdefault("GLUE_TF_XLA_CACHE", str(tmp_path_factory.mktemp("xla_cache")))
    return Path(os.environ["GLUE_TF_XLA_CACHE"])


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> Path:
    """Every GLUE task in the TSV layout and formats, small and written here (``support.glue_files``)."""
    from support.glue_files import write_glue_dir

    return write_glue_dir(tmp_path_factory.mktemp("glue_data"))


@pytest.fixture(scope="session")
def real_glue_dir() -> Path:
    """The real GLUE TSV files, for tests of agreement with them; skips where they are absent."""
    return _real_data("GLUE_TF_TEST_GLUE_DIR", "CoLA/train.tsv", "real GLUE TSV files",
                      "this test checks agreement with the real files")


@pytest.fixture(scope="session")
def tfds_manual_dir() -> Path:
    """The official GLUE archives tfds verifies by checksum; skips where they are absent."""
    return _real_data("GLUE_TF_TEST_TFDS_MANUAL_DIR", "CoLA.zip", "official GLUE archives (CoLA.zip, ...)",
                      "tfds builds from them only with their published checksums")


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory) -> Path:
    """A fresh tfds data_dir, so the offline build itself is under test."""
    return tmp_path_factory.mktemp("tensorflow_datasets")


@pytest.fixture(scope="session")
def small_glue_dir(glue_dir, tmp_path_factory) -> Path:
    """The first rows of ``glue_dir``'s RTE and WNLI files (40 train, 24 dev, 16 test), for runs of seconds."""
    root = tmp_path_factory.mktemp("small_glue")
    for task in ("RTE", "WNLI"):
        (root / task).mkdir()
        for name, rows in (("train.tsv", 40), ("dev.tsv", 24), ("test.tsv", 16)):
            lines = (glue_dir / task / name).read_text(encoding="utf-8").splitlines(keepends=True)
            (root / task / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory, glue_dir) -> Path:
    """A 2-layer, 32-wide BERT saved as a local Keras preset, its vocabulary from ``glue_dir``'s text."""
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS
    from support.tiny import SENTENCES, make_bert_preset, vocabulary_from

    source = TsvSource(glue_dir)
    texts = list(SENTENCES)  # everyday words, as in the tests' own requests
    for name in ("cola", "mrpc", "stsb", "rte", "sst2"):
        task = TASKS[name]
        texts += [e[f] for e in source.examples(task, "train")[:400] for f in task.text_features]
    return make_bert_preset(tmp_path_factory.mktemp("tiny_bert"), vocabulary_from(texts, size=1500))


@pytest.fixture(scope="session")
def trained_exports(tmp_path_factory, tiny_preset, glue_dir) -> Path:
    """A training run's output folder with tiny models for CoLA, MRPC, STS-B and RTE, trained a few steps
    on ``glue_dir``."""
    from glue_tf.config import TrainConfig
    from glue_tf.data.sources import TsvSource
    from glue_tf.tasks import TASKS
    from glue_tf.training import train_task

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(backbone=str(tiny_preset), epochs=1, batch_size=8, max_train_examples=32,
                         max_eval_examples=32, precision="float32", learning_rate=1e-3, max_seq_length=64,
                         measure_export=False)
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
