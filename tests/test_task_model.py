"""The public training recipe (glue_tf.task_model) and the benchmarks that build through it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from glue_tf.config import TrainConfig
from glue_tf.run_dir import RunDir
from glue_tf.task_model import TaskModel
from glue_tf.tasks import get_task

REPO = Path(__file__).resolve().parents[1]


def test_recipe_compiles_the_task_model_with_its_loss_schedule_and_decay_rules(tiny_preset):
    import keras

    recipe = TaskModel(get_task("stsb"), TrainConfig(backbone=str(tiny_preset), batch_size=8, epochs=2,
                                                     max_seq_length=32, clip_norm=0.5))
    assert recipe.config.learning_rate == 1e-4  # the task's default, filled in
    total = recipe.total_steps(train_size=33)
    assert total == 10  # 5 batches of 8 (the last one short) x 2 epochs
    assert recipe.total_steps(train_size=33, replicas=2) == 8  # whole batches only over replicas
    built = recipe.build(total)
    model, optimizer = built.model, built.model.optimizer
    assert isinstance(model.loss, keras.losses.MeanSquaredError)  # STS-B is a regression
    assert model.output.shape[-1] == 1 and model.output.dtype == "float32"
    assert optimizer._learning_rate.total_steps == total and optimizer._learning_rate.warmup_steps == 1
    assert optimizer.global_clipnorm == 0.5
    decayed = {v.path.split("/")[-1] for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert "bias" not in decayed and "gamma" not in decayed and "kernel" in decayed
    # The moments exist before fit (built eagerly: inside fit's first trace they cost seconds), one pair per weight.
    assert optimizer.built and len(optimizer._momentums) == len(optimizer._velocities) == len(model.trainable_variables)
    moments = [id(v) for v in optimizer.variables]
    packed = built.preprocessor(x=(["a man plays"], ["a man is playing"]))
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.fit(packed, np.array([[3.0]], "float32"), epochs=2, verbose=0)  # the first step's rate is 0 (warm-up)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert [id(v) for v in optimizer.variables] == moments  # fit trained into them, creating none
    assert any(np.any(m.numpy()) for m in optimizer._momentums)


def test_run_folder_names_every_file_of_a_seed(tmp_path):
    run = RunDir(tmp_path)
    one = run.seed_files("rte")
    assert (one.record, one.best_weights, one.checkpoint) == (
        tmp_path / "work" / "rte" / "seed.json", tmp_path / "work" / "rte" / "best.weights.h5",
        tmp_path / "work" / "rte" / "checkpoint")
    assert run.seed_files("rte", 43).record == tmp_path / "work" / "rte" / "seed-43" / "seed.json"
    assert run.seed_files("rte", 43).tensorboard == run.tensorboard("rte", 43)
    assert run.models == tmp_path / "models"


def test_bench_scripts_run_as_modules_without_path_edits():
    """Each script parses its flags run as ``python -m bench.x`` from the root, nothing added to sys.path."""
    for module in ("speed", "step_profile", "op_profile", "end_to_end", "predict_speed", "evaluate_speed", "evaluate_phases", "onednn_settings", "export_time", "agreement",
                   "benchmarks_doc", "results_doc", "hf_predict"):
        done = subprocess.run([sys.executable, "-m", f"bench.{module}", "--help"], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"bench.{module}: {done.stderr[-500:]}"
        assert "usage:" in done.stdout
    offenders = [p.name for p in (REPO / "bench").glob("*.py")
                 if "sys.path" in p.read_text(encoding="utf-8").replace("``sys.path``", "")]
    assert set(offenders) <= {"load_test.py"}, offenders
