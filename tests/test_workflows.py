"""Everyday workflows: continuing a suite, refusing to mix configurations, several seeds."""

from __future__ import annotations

import json

import pytest

from glue_tf import cli
from glue_tf.config import TrainConfig
from glue_tf.data.sources import TsvSource
from glue_tf.exports import store
from glue_tf.exports.predictor import ExportPredictor
from glue_tf.metrics import compute_metrics
from glue_tf.precision import Machine
from glue_tf.tasks import TASKS
from glue_tf.training import train_task

# Several training runs each: `make test-long` (CI runs it), to keep `make test` under 15 minutes.
pytestmark = pytest.mark.long


def _train_all(preset, glue, out, *extra):
    return cli.main(["train-all", "--tasks", "rte", "--glue-dir", str(glue), "--backbone", str(preset),
                     "--epochs", "1", "--batch-size", "8", "--precision", "float32", "--skip-export-measurements", "--out", str(out), *extra])


def test_train_all_continues_a_folder_and_refuses_another_configuration(tiny_preset, small_glue_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train_all(tiny_preset, small_glue_dir, out, "--learning-rate", "1e-3") == 0
    assert store.versions(out / "models" / "rte") == [1]

    assert _train_all(tiny_preset, small_glue_dir, out, "--learning-rate", "1e-3") == 0
    assert store.versions(out / "models" / "rte") == [1]  # not retrained
    assert "rte: already exported" in (out / "run.log").read_text()
    assert json.loads((out / "report.json").read_text())["tasks"]["rte"]["score"] is not None

    capsys.readouterr()
    assert _train_all(tiny_preset, small_glue_dir, out, "--learning-rate", "2e-3", "--seed", "7") == 2
    error = capsys.readouterr().err
    assert "learning_rate: 0.001 there, 0.002 now" in error and "seed: 42 there, 7 now" in error
    assert "--overwrite" in error
    assert store.versions(out / "models" / "rte") == [1]

    assert _train_all(tiny_preset, small_glue_dir, out, "--learning-rate", "2e-3", "--overwrite") == 0
    assert store.versions(out / "models" / "rte") == [1, 2]
    metadata = json.loads((out / "models" / "rte" / "2" / "metadata.json").read_text())
    assert metadata["training_config"]["learning_rate"] == 2e-3
    assert json.loads((out / "run_config.json").read_text())["learning_rate"] == 2e-3


def test_several_seeds_report_mean_and_std_and_export_the_best(tiny_preset, small_glue_dir, tmp_path):
    task = TASKS["rte"]
    config = TrainConfig(backbone=str(tiny_preset), epochs=1, batch_size=8, precision="float32",
                         learning_rate=1e-3, seeds=2, measure_export=False)
    result = train_task(task, TsvSource(small_glue_dir), config, tmp_path, verbose=0)

    scores = [s["best_score"] for s in result["seeds"]]
    assert [s["seed"] for s in result["seeds"]] == [42, 43]
    assert result["dev_score_mean"] == pytest.approx(sum(scores) / 2)
    assert result["dev_score_std"] >= 0.0
    assert result["best_seed"] == result["seeds"][scores.index(max(scores))]["seed"]
    source = TsvSource(small_glue_dir)
    train_labels = [e["label"] for e in source.examples(task, "train")]
    majority = max(set(train_labels), key=train_labels.count)
    dev_labels = [e["label"] for e in source.examples(task, "validation")]
    assert result["majority_score"] == pytest.approx(100 * sum(label == majority for label in dev_labels) / len(dev_labels))
    for seed in (42, 43):
        assert (tmp_path / "work" / "rte" / f"seed-{seed}" / "seed.json").is_file()

    version = store.latest(tmp_path, "rte")
    metadata = json.loads((version / "metadata.json").read_text())
    assert metadata["best_seed"] == result["best_seed"] and len(metadata["seeds"]) == 2
    dev = TsvSource(small_glue_dir).examples(task, "validation")
    exported = compute_metrics(task, [e["label"] for e in dev], ExportPredictor(version, Machine.detect()).outputs(task, dev))
    assert exported["accuracy"] == pytest.approx(max(scores))  # the export is the best seed's best epoch
