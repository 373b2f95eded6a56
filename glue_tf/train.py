"""Fine-tune, evaluate and export one GLUE task.

``train_task`` is the whole life of one task: pick the strategy and precision,
load backbone and tokenizer, tokenize once, train with per-epoch dev
evaluation and checkpoints (resuming from the last one), keep the best epoch,
export a text-in SavedModel and predict the test splits.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from glue_tf import backbones, checkpoints, distribute, export, features, precision
from glue_tf import model as model_lib
from glue_tf import optimization
from glue_tf.config import TrainConfig
from glue_tf.data.sources import Source
from glue_tf.evaluation import Predictor, outputs_to_predictions
from glue_tf.loop import fit_distributed
from glue_tf.metrics import task_score
from glue_tf.runlog import RunLog
from glue_tf.submission import write_predictions
from glue_tf.tasks import Task


def _limit(encoded: features.EncodedSplit, limit: int | None, seed: int) -> features.EncodedSplit:
    if not limit or limit >= len(encoded):
        return encoded
    rows = np.sort(np.random.default_rng(seed).choice(len(encoded), size=limit, replace=False))
    return encoded.subset(rows)


class EpochTracker(keras.callbacks.Callback):
    """Keras callback: dev metrics after each epoch, best weights kept, state checkpointed."""

    def __init__(self, task, predictor, dev, state_store, best_path, history, log, write):
        super().__init__()
        self.task, self.predictor, self.dev = task, predictor, dev
        self.state_store, self.best_path = state_store, best_path
        self.history, self.log, self.write = history, log, write
        self.epoch_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.perf_counter() - self.epoch_started
        components = self.predictor.score(self.task, self.dev)
        score = task_score(self.task, components)
        record = {
            "epoch": epoch + 1,
            "train_loss": float(logs.get("loss", math.nan)) if logs else math.nan,
            "dev": components,
            "dev_score": score,
            "train_seconds": round(train_seconds, 2),
        }
        self.history["epochs"].append(record)
        best = self.history.get("best_score")
        if best is None or score > best:
            self.history.update(best_score=score, best_epoch=epoch + 1)
            if self.write:
                checkpoints.save_weights_atomically(self.model, self.best_path)
        shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in components.items())
        self.log(f"{self.task.name} epoch {epoch + 1}: dev {shown} (score {100 * score:.2f}; best epoch {self.history['best_epoch']})")
        self.state_store.save(self.model, {"epoch": epoch + 1, **self.history})



def _train_dataset(encoded, cfg: TrainConfig, strategy, first_epoch: int, feature_names):
    """Batches for epochs ``first_epoch..epochs-1``; returns (dataset, steps per epoch, efficiency)."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    plans = [
        features.batch_plan(encoded.lengths, cfg.batch_size, seed=cfg.seed * 1000 + epoch, drop_remainder=replicas > 1)
        for epoch in range(cfg.epochs)
    ]
    steps = len(plans[0])
    all_slices = [s for plan in plans for s in features.replica_slices(plan, replicas, list(range(replicas)))]
    efficiency = features.padding_efficiency(encoded.lengths, all_slices)
    remaining = [batch for plan in plans[first_epoch:] for batch in plan]
    if replicas == 1:
        return features.batches_dataset(encoded, remaining, feature_names=feature_names), steps, efficiency

    def dataset_fn(context: tf.distribute.InputContext):
        local = replicas // context.num_input_pipelines
        ids = [context.input_pipeline_id * local + k for k in range(local)]
        slices = features.replica_slices(remaining, replicas, ids)
        return features.batches_dataset(encoded, slices, feature_names=feature_names)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options), steps, efficiency


def train_task(
    task: Task,
    source: Source,
    config: TrainConfig,
    out_dir,
    strategy=None,
    strategy_name: str = "",
    log: RunLog | None = None,
    verbose="auto",
) -> dict:
    """Trains, evaluates, exports and predicts one task; returns its result record."""

    cfg = config.for_task(task)
    out_dir = Path(out_dir)
    if strategy is None:
        strategy, strategy_name = distribute.select_strategy()
    chief = distribute.is_chief(strategy)
    log = log or RunLog(out_dir / "run.log", enabled=chief)
    work = out_dir / "work" / task.name
    started = time.perf_counter()

    policy, why = precision.resolve(cfg.precision)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(cfg.seed)
    log(f"{task.name}: precision {policy} ({why}); {strategy_name}; backbone {cfg.backbone}")

    with strategy.scope():
        backbone, preprocessor = backbones.load(cfg.backbone, cfg.max_seq_length)
        model = model_lib.build(backbone, task, cfg.dropout)
    feature_names = model_lib.input_names(model)

    t0 = time.perf_counter()
    train = _limit(features.encode(source.load(task, "train"), task, preprocessor), cfg.max_train_examples, cfg.seed)
    dev = {
        split: _limit(features.encode(source.load(task, split), task, preprocessor), cfg.max_eval_examples, cfg.seed)
        for split in task.dev_splits
    }
    log(
        f"{task.name}: tokenized {len(train)} train / {sum(map(len, dev.values()))} dev examples in "
        f"{time.perf_counter() - t0:.1f}s; mean length {train.lengths.mean():.1f} tokens (max {cfg.max_seq_length})"
    )

    state_store = checkpoints.TrainingState(work / "checkpoint", writable=chief)
    total_steps = features.steps_per_epoch(len(train), cfg.batch_size, strategy.num_replicas_in_sync > 1) * cfg.epochs
    with strategy.scope():
        optimizer = optimization.make_optimizer(
            cfg.learning_rate, total_steps, cfg.warmup_fraction, cfg.weight_decay, cfg.clip_norm
        )
        model.compile(optimizer=optimizer, loss=model_lib.loss_for(task), jit_compile=cfg.jit_compile)
        state = state_store.restore(model)
    history = {"epochs": [], "best_score": None, "best_epoch": None}
    first_epoch = 0
    if state:
        first_epoch = state["epoch"]
        history = {k: state[k] for k in history}
        log(f"{task.name}: resuming from the checkpoint of epoch {first_epoch} ({state_store.directory})")

    dataset, steps, efficiency = _train_dataset(train, cfg, strategy, first_epoch, feature_names)
    predictor = Predictor(model, cfg.eval_batch_size)
    best_path = work / "best.weights.h5"
    tracker = EpochTracker(task, predictor, dev, state_store, best_path, history, log, chief)
    callbacks = [tracker]
    tensorboard_dir = str(out_dir / "tensorboard" / task.name)
    multi_replica = strategy.num_replicas_in_sync > 1
    if chief and not multi_replica:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=tensorboard_dir))
    log(
        f"{task.name}: {cfg.epochs} epochs x {steps} steps, batch {cfg.batch_size}, lr {cfg.learning_rate:g}, "
        f"padding efficiency {100 * efficiency:.1f}% (real/computed tokens)"
    )
    if first_epoch < cfg.epochs and multi_replica:
        fit_distributed(
            model, model_lib.loss_for(task), dataset, strategy, cfg.epochs, first_epoch, steps,
            cfg.batch_size, callbacks, verbose=verbose, summary_dir=tensorboard_dir if chief else None,
        )
    elif first_epoch < cfg.epochs:
        model.fit(
            dataset,
            epochs=cfg.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the batch plan already shuffles
        )
    # Dev evaluation happens inside fit; report train throughput net of it.
    examples_seen = (cfg.epochs - first_epoch) * len(train)
    train_seconds = sum(e["train_seconds"] for e in history["epochs"][first_epoch:])
    throughput = examples_seen / train_seconds if train_seconds else None

    fingerprint = float(sum(np.abs(v.numpy().astype(np.float64)).sum() for v in model.weights))
    if best_path.is_file():
        model.load_weights(best_path)
    result = {
        "task": task.name,
        "config": cfg.to_dict(),
        "precision": {"policy": policy, "reason": why},
        "strategy": strategy_name,
        "data": {
            "source": source.describe(),
            "train_examples": len(train),
            "dev_examples": {split: len(e) for split, e in dev.items()},
        },
        "epochs": history["epochs"],
        "best_epoch": history["best_epoch"],
        "dev": next(e["dev"] for e in history["epochs"] if e["epoch"] == history["best_epoch"]),
        "dev_score": history["best_score"],
        "padding_efficiency": efficiency,
        # Sum of |w| over the final (pre-selection) weights: equal on every worker of a synced run.
        "weights_fingerprint": fingerprint,
        "train_examples_per_second": throughput,
        "train_tokens_per_second": throughput * float(train.lengths.mean()) if throughput else None,
        "wall_seconds": None,
        "backbone": {
            "spec": cfg.backbone,
            "class": type(backbone).__name__,
            "vocabulary_size": int(preprocessor.tokenizer.vocabulary_size()),
            "parameters": int(backbone.count_params()),
        },
    }
    if chief:
        version_dir = export.export(model, preprocessor, task, out_dir, metadata=_metadata(result))
        result["export"] = str(version_dir)
        log(f"{task.name}: exported {version_dir}")
        result["test_predictions"] = predict_test_splits(task, source, preprocessor, predictor, out_dir, log)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if chief:
        (work / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _metadata(result: dict) -> dict:
    from glue_tf.tasks import get_task

    task = get_task(result["task"])
    return {
        "label_names": list(task.label_names),
        "text_features": list(task.text_features),
        "backbone": result["backbone"],
        "vocabulary_size": result["backbone"]["vocabulary_size"],
        "max_seq_length": result["config"]["max_seq_length"],
        "precision": result["precision"]["policy"],
        "training_config": result["config"],
        "dev_metrics_per_epoch": result["epochs"],
        "best_epoch": result["best_epoch"],
        "dev_metrics": result["dev"],
        "data": result["data"],
    }


def predict_test_splits(task: Task, source: Source, preprocessor, predictor: Predictor, out_dir, log) -> dict:
    """Writes leaderboard predictions for the task's test splits found in ``source``."""
    written = {}
    for split in task.test_splits:
        if split not in source.available_splits(task):
            continue
        encoded = features.encode(source.load(task, split), task, preprocessor)
        predictions = outputs_to_predictions(task, predictor.logits(encoded))
        path = write_predictions(out_dir, task, split, encoded.idx, predictions)
        written[split] = str(path)
        log(f"{task.name}: predicted {len(encoded)} {split} examples -> {path}")
    return written
