"""Fine-tune, evaluate and export one GLUE task.

``train_task`` is the whole life of one task: pick the strategy and precision,
load backbone and tokenizer, tokenize once, train with per-epoch dev
evaluation and checkpoints (resuming from the last one), keep the best epoch,
export a text-in SavedModel and predict the test splits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from glue_tf import backbones, checkpoints, distribute, export, features, metrics, precision, storage
from glue_tf import model as model_lib
from glue_tf import optimization
from glue_tf.config import TrainConfig
from glue_tf.data.sources import Source
from glue_tf.evaluation import Predictor
from glue_tf.loop import fit_distributed
from glue_tf.runlog import RunLog
from glue_tf.submission import write_predictions
from glue_tf.tasks import Task


def _sample_rows(count: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted row numbers of a seeded random sample of ``limit`` out of ``count``; None: keep all."""
    if not limit or limit >= count:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def _encode_sample(source: Source, task: Task, split: str, preprocessor, limit: int | None, seed: int):
    """Tokenizes ``split``, or only a seeded sample of ``limit`` rows of it (a quick run of QQP need
    not tokenize 364k pairs); the sample is the same whether drawn before or after tokenizing."""
    import tensorflow as tf

    dataset = source.load(task, split)
    count = int(dataset.cardinality())
    rows = _sample_rows(count, limit, seed) if count >= 0 else None
    if rows is not None:
        keep = np.zeros(count, bool)
        keep[rows] = True
        keep = tf.constant(keep)
        chunk = 4096  # masks whole chunks: a per-example filter costs seconds on SST-2's 67k rows

        def select(number, examples):
            start = number * chunk
            mask = keep[start : start + tf.shape(examples["idx"], out_type=tf.int64)[0]]
            return tf.nest.map_structure(lambda column: tf.boolean_mask(column, mask), examples)

        dataset = dataset.batch(chunk).enumerate().map(select).unbatch()
    encoded = features.encode(dataset, task, preprocessor)
    rows = _sample_rows(len(encoded), limit, seed)  # a source of unknown length: sample after tokenizing
    return encoded if rows is None else encoded.subset(rows)


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
        score = metrics.task_score(self.task, components)
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
        shown = ", ".join(f"{k} {v:.2f}" for k, v in components.items())
        self.log(f"{self.task.name} epoch {epoch + 1}: dev {shown} (score {score:.2f}; best epoch {self.history['best_epoch']})")
        self.state_store.save(self.model, {"epoch": epoch + 1, **self.history})



XLA_WIDTH_MULTIPLE = 8


def _train_dataset(encoded, cfg: TrainConfig, strategy, first_epoch: int, skip: int, feature_names):
    """Batches from step ``skip`` of epoch ``first_epoch`` on; returns (datasets, steps per epoch, efficiency).

    One replica: a dataset for the rest of a resumed epoch (if ``skip``) and one for
    the epochs after it, as Keras' ``fit`` takes a fixed number of steps per epoch.
    Several replicas: one per-replica dataset of all remaining batches.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    plans = [
        features.batch_plan(encoded.lengths, cfg.batch_size, seed=cfg.seed * 1000 + epoch, drop_remainder=replicas > 1)
        for epoch in range(cfg.epochs)
    ]
    steps = len(plans[0])
    # Under XLA every new batch shape is a compilation: round widths up to a few buckets.
    padding = {"width_multiple": XLA_WIDTH_MULTIPLE if cfg.jit_compile else 1, "max_width": cfg.max_seq_length}
    all_slices = [s for plan in plans for s in features.replica_slices(plan, replicas, list(range(replicas)))]
    efficiency = features.padding_efficiency(encoded.lengths, all_slices, **padding)
    resumed = plans[first_epoch][skip:] if first_epoch < cfg.epochs else []
    later = [batch for plan in plans[first_epoch + 1 :] for batch in plan]
    if replicas == 1:
        segments = ([resumed] if skip else []) + [later if skip else resumed + later]
        return [features.batches_dataset(encoded, s, feature_names=feature_names, **padding) for s in segments], steps, efficiency

    remaining = resumed + later

    def dataset_fn(context: tf.distribute.InputContext):
        local = replicas // context.num_input_pipelines
        ids = [context.input_pipeline_id * local + k for k in range(local)]
        slices = features.replica_slices(remaining, replicas, ids)
        return features.batches_dataset(encoded, slices, feature_names=feature_names, **padding)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return [strategy.distribute_datasets_from_function(dataset_fn, options)], steps, efficiency


class StepCheckpoint(keras.callbacks.Callback):
    """Saves the training state every ``every`` steps inside an epoch, so a kill loses at most that many."""

    def __init__(self, state_store, every: int, steps_per_epoch: int, history: dict):
        super().__init__()
        self.state_store, self.every, self.steps_per_epoch, self.history = state_store, every, steps_per_epoch, history
        self.offset = 0  # steps of the current epoch done before this fit call (a resumed epoch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.offset + batch + 1
        if self.every and step % self.every == 0 and step < self.steps_per_epoch:
            self.state_store.save(self.model, {"epoch": self.epoch, "step": step, **self.history})

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0


def _fit_seed(task, cfg, train, dev, strategy, work: Path, chief: bool, log, verbose, tensorboard_dir: str,
              loaded=None):
    """Trains one seed with per-epoch dev evaluation and step/epoch checkpoints; returns its record.

    ``loaded``: a fresh ``(backbone, preprocessor)`` to use, else they are loaded again
    (every seed starts from the pretrained weights). A seed that finished before
    (``seed.json`` written) is not trained again; one that was interrupted resumes from
    its last checkpoint, mid-epoch included.
    """
    record_path = work / "seed.json"
    with strategy.scope():
        backbone, preprocessor = loaded or backbones.load(cfg.backbone, cfg.max_seq_length)
        model = model_lib.build(backbone, task, cfg.dropout)
    multi_replica = strategy.num_replicas_in_sync > 1
    total_steps = features.steps_per_epoch(len(train), cfg.batch_size, multi_replica) * cfg.epochs
    with strategy.scope():
        optimizer = optimization.make_optimizer(
            cfg.learning_rate, total_steps, cfg.warmup_fraction, cfg.weight_decay, cfg.clip_norm
        )
        model.compile(optimizer=optimizer, loss=model_lib.loss_for(task), jit_compile=cfg.jit_compile)
    best_path = work / "best.weights.h5"
    if record_path.is_file() and best_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        log(f"{task.name}: seed {cfg.seed} already trained (dev score {record['best_score']:.2f}); not retrained")
        return record, model, backbone, preprocessor

    state_store = checkpoints.TrainingState(work / "checkpoint", writable=chief)
    with strategy.scope():
        state = state_store.restore(model)
    history = {"epochs": [], "best_score": None, "best_epoch": None}
    first_epoch, skip = 0, 0
    if state:
        first_epoch, skip = state["epoch"], state.get("step", 0)
        history = {k: state[k] for k in history}
        at = f", step {skip}" if skip else ""
        log(f"{task.name}: resuming from the checkpoint of epoch {first_epoch}{at} ({state_store.directory})")

    datasets, steps, efficiency = _train_dataset(train, cfg, strategy, first_epoch, skip, model_lib.input_names(model))
    predictor = Predictor(model, cfg.eval_batch_size)
    tracker = EpochTracker(task, predictor, dev, state_store, best_path, history, log, chief)
    stepper = StepCheckpoint(state_store, cfg.checkpoint_every, steps, history)
    callbacks = [tracker] + ([stepper] if chief and cfg.checkpoint_every else [])
    if chief and not multi_replica:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=tensorboard_dir))
    log(
        f"{task.name}: seed {cfg.seed}, {cfg.epochs} epochs x {steps} steps, batch {cfg.batch_size}, "
        f"lr {cfg.learning_rate:g}, padding efficiency {100 * efficiency:.1f}% (real/computed tokens)"
    )
    if first_epoch < cfg.epochs and multi_replica:
        fit_distributed(
            model, model_lib.loss_for(task), datasets[0], strategy, cfg.epochs, first_epoch, steps,
            cfg.batch_size, callbacks, verbose=verbose, summary_dir=tensorboard_dir if chief else None, resume_step=skip,
        )
    elif first_epoch < cfg.epochs:
        # A resumed epoch first (its remaining steps), then the whole epochs after it.
        segments = ([(first_epoch, first_epoch + 1, steps - skip, skip)] if skip else []) + [
            (first_epoch + (1 if skip else 0), cfg.epochs, steps, 0)
        ]
        for dataset, (initial, until, count, offset) in zip(datasets, segments):
            if initial >= until:
                continue
            stepper.offset = offset
            model.fit(dataset, epochs=until, initial_epoch=initial, steps_per_epoch=count, callbacks=callbacks,
                      verbose=verbose, shuffle=False)  # the batch plan already shuffles
    epochs_run = history["epochs"][first_epoch:]
    train_seconds = sum(e["train_seconds"] for e in epochs_run)
    record = {
        "seed": cfg.seed,
        **history,
        "dev": next(e["dev"] for e in history["epochs"] if e["epoch"] == history["best_epoch"]),
        "padding_efficiency": efficiency,
        "train_seconds": train_seconds,
        "examples_trained": len(train) * (cfg.epochs - first_epoch) - skip * cfg.batch_size,
        # Sum of |w| over the final (pre-selection) weights: equal on every worker of a synced run.
        "weights_fingerprint": float(sum(np.abs(v.numpy().astype(np.float64)).sum() for v in model.weights)),
    }
    if chief:
        checkpoints.atomic_write_text(record_path, json.dumps(record, indent=2))
    return record, model, backbone, preprocessor


def _seed_summary(task: Task, records: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each score component and of the task score."""
    keys = [key for key, _, _ in task.score_components]
    values = {key: [r["dev"][key] for r in records] for key in keys}
    scores = [r["best_score"] for r in records]
    return {
        "dev_mean": {key: float(np.mean(v)) for key, v in values.items()},
        "dev_std": {key: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for key, v in values.items()},
        "dev_score_mean": float(np.mean(scores)),
        "dev_score_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
    }


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
    """Trains ``config.seeds`` seeds, exports the best, predicts the test splits; returns the result record."""

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
    log(f"{task.name}: precision {policy} ({why}); {strategy_name}; backbone {cfg.backbone}")

    seeds = [cfg.seed + k for k in range(cfg.seeds)]
    # Each seed is set before its backbone and tokenizer are loaded, never after: seeding clears
    # TensorFlow's eager kernel cache, which owns tensorflow-text's SentencePiece resource
    # (tensorflow/text b/318839908), so a DeBERTa/ALBERT tokenizer loaded earlier stops working.
    keras.utils.set_random_seed(seeds[0])
    with strategy.scope():
        loaded = backbones.load(cfg.backbone, cfg.max_seq_length)  # the first seed's backbone
    backbone, preprocessor = loaded
    if chief:  # an hour of training must not end on a full disk
        storage.check_free_space(storage.ensure_writable(out_dir), backbone.count_params())
    t0 = time.perf_counter()
    train = _encode_sample(source, task, "train", preprocessor, cfg.max_train_examples, cfg.seed)
    dev = {
        split: _encode_sample(source, task, split, preprocessor, cfg.max_eval_examples, cfg.seed)
        for split in task.dev_splits
    }
    log(
        f"{task.name}: tokenized {len(train)} train / {sum(map(len, dev.values()))} dev examples in "
        f"{time.perf_counter() - t0:.1f}s; mean length {train.lengths.mean():.1f} tokens (max {cfg.max_seq_length})"
    )

    records, best = [], None
    for seed in seeds:
        seed_cfg = dataclasses.replace(cfg, seed=seed)
        if seed != seeds[0]:  # the first seed was set before its backbone was loaded
            keras.utils.set_random_seed(seed)
        seed_work = work if len(seeds) == 1 else work / f"seed-{seed}"
        board = str(out_dir / "tensorboard" / task.name) + ("" if len(seeds) == 1 else f"/seed-{seed}")
        record, model, backbone, preprocessor = _fit_seed(
            task, seed_cfg, train, dev, strategy, seed_work, chief, log, verbose, board, loaded
        )
        loaded = None
        records.append(record)
        if best is None or record["best_score"] > best[0]["best_score"]:
            best = (record, seed_work / "best.weights.h5")
    best_record, best_weights = best
    if best_weights.is_file():
        model.load_weights(best_weights)  # the last seed's model, same architecture
    if len(seeds) > 1:
        summary = _seed_summary(task, records)
        log(
            f"{task.name}: {len(seeds)} seeds, dev score {summary['dev_score_mean']:.2f} "
            f"± {summary['dev_score_std']:.2f}; exporting seed {best_record['seed']} "
            f"(dev score {best_record['best_score']:.2f})"
        )
    else:
        summary = {}

    train_seconds = sum(r["train_seconds"] for r in records)
    throughput = sum(r["examples_trained"] for r in records) / train_seconds if train_seconds else None
    majority = metrics.majority_baseline(task, train.labels, {split: e.labels for split, e in dev.items()})
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
        "epochs": best_record["epochs"],
        "best_epoch": best_record["best_epoch"],
        "best_seed": best_record["seed"],
        "dev": best_record["dev"],
        "dev_score": best_record["best_score"],
        "seeds": [{k: r[k] for k in ("seed", "best_epoch", "best_score", "dev")} for r in records],
        **summary,
        "majority_baseline": majority,
        "majority_score": metrics.task_score(task, majority),
        "padding_efficiency": best_record["padding_efficiency"],
        "weights_fingerprint": best_record["weights_fingerprint"],
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
        digest = export.weights_digest(model)
        version_dir = export.latest_holding(out_dir, task.name, digest)
        if version_dir is not None:
            log(f"{task.name}: {version_dir} already holds these weights; not exported again")
        else:
            version_dir = export.export(model, preprocessor, task, out_dir, metadata=_metadata(result), digest=digest,
                                        dev_examples=_dev_examples(source, task, dev) if cfg.measure_export else None)
            log(f"{task.name}: exported {version_dir}" + (f" (seed {best_record['seed']})" if len(seeds) > 1 else ""))
        result["export"] = str(version_dir)
        predictor = Predictor(model, cfg.eval_batch_size)
        result["test_predictions"] = predict_test_splits(task, source, preprocessor, predictor, out_dir, log)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if chief:
        checkpoints.atomic_write_text(work / "result.json", json.dumps(result, indent=2))
    return result


def _dev_examples(source: Source, task: Task, dev: dict) -> list[dict]:
    """The dev rows this run evaluated, as text: the export measures its signatures on them."""
    rows = []
    for split, encoded in dev.items():
        evaluated = set(encoded.idx.tolist())
        rows += [example for example in source.examples(task, split) if example["idx"] in evaluated]
    return rows


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
        "best_seed": result["best_seed"],
        "seeds": result["seeds"],
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
        predictions = metrics.predictions_from_outputs(task, {"logits": predictor.logits(encoded)})
        path = write_predictions(out_dir, task, split, encoded.idx, predictions)
        written[split] = str(path)
        log(f"{task.name}: predicted {len(encoded)} {split} examples -> {path}")
    return written
