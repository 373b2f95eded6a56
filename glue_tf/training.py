"""Fine-tune, evaluate and export one GLUE task.

``train_task`` is the whole life of one task, in four steps: prepare the data
(pick the precision, load backbone and tokenizer, tokenize once); train the seeds
(per-epoch dev evaluation and checkpoints, resuming from the last one, the best
epoch kept); build the result record; publish (export a text-in SavedModel,
predict the test splits, write ``result.json``). The input pipeline is
:mod:`glue_tf.features`, the callbacks :mod:`glue_tf.callbacks`, the folder
layout :class:`glue_tf.run_dir.RunDir`.
"""

from __future__ import annotations

import dataclasses
import json
import time

import keras
import numpy as np

from glue_tf import backbones, checkpoints, distribute, export, features, metrics, onednn, precision, storage, tf_startup
from glue_tf import dev_predictions, intervals, provenance
from glue_tf import model as model_lib
from glue_tf.callbacks import EpochTracker, StepCheckpoint, StepLogger
from glue_tf.config import TrainConfig
from glue_tf.data.sources import Source
from glue_tf.evaluation import KerasScorer
from glue_tf.exports import store
from glue_tf.loop import fit_distributed
from glue_tf.run_dir import RunDir, SeedFiles
from glue_tf.runlog import RunLog
from glue_tf.submission import write_predictions
from glue_tf.task_model import TaskModel
from glue_tf.tasks import Task


@dataclasses.dataclass
class _SeedRun:
    """One trained seed: its record, its model (the last epoch's weights), and the scorer that evaluated it."""

    record: dict
    model: object
    backbone: object
    preprocessor: object
    predictor: KerasScorer


def _fit_seed(task, cfg, train, dev, strategy, files: SeedFiles, chief: bool, log, verbose, loaded=None) -> _SeedRun:
    """Trains one seed with per-epoch dev evaluation and step/epoch checkpoints, and keeps its best epoch's dev
    predictions (:mod:`glue_tf.dev_predictions`).

    ``loaded``: a fresh ``(backbone, preprocessor)`` to use, else they are loaded again
    (every seed starts from the pretrained weights). A seed that finished before
    (its record written) is not trained again; one that was interrupted resumes from
    its last checkpoint, mid-epoch included.
    """
    multi_replica = strategy.num_replicas_in_sync > 1
    recipe = TaskModel(task, cfg)
    built = recipe.build(recipe.total_steps(len(train), strategy.num_replicas_in_sync), strategy, loaded)
    model, backbone, preprocessor = built.model, built.backbone, built.preprocessor
    predictor = KerasScorer(model, cfg.eval_batch_size)  # one traced forward pass for every dev and test split
    log(f"{task.name}: seed {cfg.seed}: {built.head_origin}")
    tensorboard_dir = str(files.tensorboard)
    if files.record.is_file() and files.best_weights.is_file():
        record = json.loads(files.record.read_text(encoding="utf-8"))
        log(f"{task.name}: seed {cfg.seed} already trained (dev score {record['best_score']:.2f}); not retrained")
        dev_predictions.keep(task, model, files, dev, predictor, chief)
        return _SeedRun(record, model, backbone, preprocessor, predictor)

    state_store = checkpoints.TrainingState(files.checkpoint, writable=chief)
    history, first_epoch, skip = _restore(task, model, strategy, state_store, log)
    datasets, steps, efficiency = features.train_datasets(train, cfg, strategy, first_epoch, skip, model_lib.input_names(model))
    tracker = EpochTracker(task, predictor, dev, state_store, files.best_weights, history, log, chief, tensorboard_dir)
    stepper = StepCheckpoint(state_store, cfg.checkpoint_every, steps, history)
    logger = StepLogger(task.name, cfg.logging_steps, steps, cfg.batch_size, log, tensorboard_dir if chief else None)
    callbacks = [tracker, logger] + ([stepper] if chief and cfg.checkpoint_every else [])
    if chief and not multi_replica:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=tensorboard_dir))
    log(
        f"{task.name}: seed {cfg.seed}, {cfg.epochs} epochs x {steps} steps, batch {cfg.batch_size}, "
        f"lr {cfg.learning_rate:g}, padding efficiency {100 * efficiency:.1f}% (real/computed tokens)"
    )
    if first_epoch < cfg.epochs:
        _run_epochs(model, cfg, strategy, datasets, steps, first_epoch, skip, callbacks, [stepper, logger],
                    verbose, tensorboard_dir if chief else None)
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
        checkpoints.atomic_write_text(files.record, json.dumps(record, indent=2))
    dev_predictions.keep(task, model, files, dev, predictor, chief, tracker.best_predictions)
    return _SeedRun(record, model, backbone, preprocessor, predictor)


def _restore(task, model, strategy, state_store, log) -> tuple[dict, int, int]:
    """``(history, first_epoch, skip)``: where an interrupted seed resumes (its last checkpoint, restored into
    ``model``), or a fresh start."""
    with strategy.scope():
        state = state_store.restore(model)
    history = {"epochs": [], "best_score": None, "best_epoch": None}
    if not state:
        return history, 0, 0
    first_epoch, skip = state["epoch"], state.get("step", 0)
    at = f", step {skip}" if skip else ""
    log(f"{task.name}: resuming from the checkpoint of epoch {first_epoch}{at} ({state_store.directory})")
    return {k: state[k] for k in history}, first_epoch, skip


def _run_epochs(model, cfg, strategy, datasets, steps, first_epoch, skip, callbacks, step_counters, verbose,
                summary_dir):
    """Epochs ``first_epoch..`` from step ``skip``: Keras' ``fit`` on one replica, else the multi-replica loop.

    ``step_counters``: the callbacks that count steps within an epoch, told where a resumed epoch starts.
    """
    if strategy.num_replicas_in_sync > 1:
        fit_distributed(model, datasets[0], strategy, cfg.epochs, first_epoch, steps, callbacks, verbose=verbose,
                        summary_dir=summary_dir, resume_step=skip)
        return
    # A resumed epoch first (its remaining steps), then the whole epochs after it.
    segments = ([(first_epoch, first_epoch + 1, steps - skip, skip)] if skip else []) + [
        (first_epoch + (1 if skip else 0), cfg.epochs, steps, 0)
    ]
    for dataset, (initial, until, count, offset) in zip(datasets, segments):
        if initial >= until:
            continue
        for counter in step_counters:
            counter.offset = offset
        model.fit(dataset, epochs=until, initial_epoch=initial, steps_per_epoch=count, callbacks=callbacks,
                  verbose=verbose, shuffle=False)  # the batch plan already shuffles


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


@dataclasses.dataclass
class _Prepared:
    """Step 1's output: the first seed's backbone and tokenizer, and the tokenized splits."""

    backbone: object
    preprocessor: object
    train: features.EncodedSplit
    dev: dict[str, features.EncodedSplit]


@dataclasses.dataclass
class _Trained:
    """Step 2's output: every seed's record, the best one, and the last seed's run, whose model now holds the
    best seed's best weights (its scorer's traced forward pass serves the test splits too)."""

    records: list[dict]
    best: dict
    summary: dict  # mean and std over seeds (_seed_summary); empty for one seed
    holder: _SeedRun


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
    """Trains ``config.seeds`` seeds, exports the best, predicts the test splits; returns the result record.

    Four steps: prepare the data, train the seeds, build the result record, publish
    (export, test predictions, ``result.json``; the chief worker only).
    """
    cfg = config.for_task(task)
    run = RunDir(out_dir)
    if strategy is None:
        strategy, strategy_name = distribute.select_strategy()
    chief = distribute.is_chief(strategy)
    log = log or RunLog(run.log, enabled=chief)
    started = time.perf_counter()
    machine = precision.Machine.detect()
    policy, why = precision.resolve(cfg.precision, machine)
    keras.mixed_precision.set_global_policy(policy)
    jit_compile, jit_why = precision.xla_default(cfg.jit_compile, machine, replicas=strategy.num_replicas_in_sync)
    cfg = dataclasses.replace(cfg, jit_compile=jit_compile)
    log(f"{task.name}: precision {policy} ({why}); {strategy_name}; backbone {cfg.backbone}")
    log(f"{task.name}: XLA {'on' if jit_compile else 'off'} ({jit_why}); {'; '.join(tf_startup.lines())}")

    prepared = _prepare(task, source, cfg, strategy, chief, run, log)
    trained = _train_seeds(task, cfg, prepared, strategy, chief, run, log, verbose)
    result = _result_record(task, source, cfg, prepared, trained, {"policy": policy, "reason": why}, strategy_name)
    if chief:
        result.update(_dev_interval(task, run, result))
        _publish(task, source, cfg, prepared, trained, result, run, log)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if chief:
        checkpoints.atomic_write_text(run.result(task.name), json.dumps(result, indent=2))
    return result


def _prepare(task, source, cfg, strategy, chief, run: RunDir, log) -> _Prepared:
    """Seeds the first seed, loads the backbone and tokenizer, checks the disk, tokenizes train and dev."""
    # Each seed is set before its backbone and tokenizer are loaded, never after: seeding clears
    # TensorFlow's eager kernel cache, which owns tensorflow-text's SentencePiece resource
    # (tensorflow/text b/318839908), so a DeBERTa/ALBERT tokenizer loaded earlier stops working.
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        backbone, preprocessor = backbones.load(cfg.backbone, cfg.max_seq_length)
    if chief:  # an hour of training must not end on a full disk
        storage.check_free_space(storage.ensure_writable(run.root), backbone.count_params())
    started = time.perf_counter()
    train = features.encode_sample(source, task, "train", preprocessor, cfg.max_train_examples, cfg.seed)
    dev = {
        split: features.encode_sample(source, task, split, preprocessor, cfg.max_eval_examples, cfg.seed)
        for split in task.dev_splits
    }
    log(
        f"{task.name}: tokenized {len(train)} train / {sum(map(len, dev.values()))} dev examples in "
        f"{time.perf_counter() - started:.1f}s; mean length {train.lengths.mean():.1f} tokens (max {cfg.max_seq_length})"
    )
    return _Prepared(backbone, preprocessor, train, dev)


def _train_seeds(task, cfg, prepared: _Prepared, strategy, chief, run: RunDir, log, verbose) -> _Trained:
    """Trains seeds ``cfg.seed .. cfg.seed + cfg.seeds - 1``; the returned model holds the best seed's best epoch."""
    seeds = [cfg.seed + k for k in range(cfg.seeds)]
    loaded = (prepared.backbone, prepared.preprocessor)  # the first seed's, loaded after its seed was set
    records, best = [], None
    for seed in seeds:
        if seed != seeds[0]:
            keras.utils.set_random_seed(seed)
        files = run.seed_files(task.name, None if len(seeds) == 1 else seed)
        seed_run = _fit_seed(
            task, dataclasses.replace(cfg, seed=seed), prepared.train, prepared.dev, strategy, files, chief, log,
            verbose, loaded,
        )
        loaded = None
        records.append(seed_run.record)
        if best is None or seed_run.record["best_score"] > best[0]["best_score"]:
            best = (seed_run.record, files.best_weights)
    best_record, best_weights = best
    if best_weights.is_file():
        seed_run.model.load_weights(best_weights)  # the last seed's model, same architecture
    summary = _seed_summary(task, records) if len(seeds) > 1 else {}
    if summary:
        log(
            f"{task.name}: {len(seeds)} seeds, dev score {summary['dev_score_mean']:.2f} "
            f"± {summary['dev_score_std']:.2f}; exporting seed {best_record['seed']} "
            f"(dev score {best_record['best_score']:.2f})"
        )
    return _Trained(records, best_record, summary, seed_run)


def _result_record(task, source, cfg, prepared: _Prepared, trained: _Trained, precision_used: dict,
                   strategy_name: str) -> dict:
    """The task's ``result.json`` record (without ``export``, ``test_predictions`` and ``wall_seconds``)."""
    records, best = trained.records, trained.best
    train, dev = prepared.train, prepared.dev
    train_seconds = sum(r["train_seconds"] for r in records)
    throughput = sum(r["examples_trained"] for r in records) / train_seconds if train_seconds else None
    majority = metrics.majority_baseline(task, train.labels, {split: e.labels for split, e in dev.items()})
    return {
        "task": task.name,
        "config": cfg.to_dict(),
        "precision": precision_used,
        "onednn": onednn.is_on(),
        "strategy": strategy_name,
        "data": {
            "source": source.describe(),
            "train_examples": len(train),
            "dev_examples": {split: len(e) for split, e in dev.items()},
        },
        "epochs": best["epochs"],
        "best_epoch": best["best_epoch"],
        "best_seed": best["seed"],
        "dev": best["dev"],
        "dev_score": best["best_score"],
        "seeds": [{k: r[k] for k in ("seed", "best_epoch", "best_score", "dev")} for r in records],
        **trained.summary,
        "majority_baseline": majority,
        "majority_score": metrics.task_score(task, majority),
        "padding_efficiency": best["padding_efficiency"],
        "weights_fingerprint": best["weights_fingerprint"],
        "train_examples_per_second": throughput,
        "train_tokens_per_second": throughput * float(train.lengths.mean()) if throughput else None,
        "wall_seconds": None,
        "backbone": {
            **provenance.backbone_origin(cfg.backbone, backbones.local_folder(cfg.backbone)),
            "class": type(trained.holder.backbone).__name__,
            "vocabulary_size": int(trained.holder.preprocessor.tokenizer.vocabulary_size()),
            "parameters": int(trained.holder.backbone.count_params()),
        },
    }


def _dev_interval(task: Task, run: RunDir, result: dict) -> dict:
    """The 95% bootstrap interval of the mean-over-seeds dev score over dev examples (:mod:`glue_tf.intervals`),
    from the seeds' kept dev predictions: computed once here, quoted by the report, the export and its card."""
    seeds = dev_predictions.load_run(run.root, task.name, result)
    found = intervals.task_interval(task, seeds) if seeds else {}
    return {"dev_score_ci95": found.get("ci95"), "dev_score_ci95_method": found.get("method")}


def _publish(task, source, cfg, prepared: _Prepared, trained: _Trained, result: dict, run: RunDir, log) -> None:
    """Exports the best weights (unless a version holds them already) and predicts the test splits."""
    model, preprocessor = trained.holder.model, trained.holder.preprocessor
    digest = export.weights_digest(model)
    version_dir = store.latest_holding(run.root, task.name, digest)
    if version_dir is not None:
        log(f"{task.name}: {version_dir} already holds these weights; not exported again")
    else:
        measured_on = _dev_examples(source, task, prepared.dev) if cfg.measure_export else None
        version_dir = export.export(model, preprocessor, task, run.root, metadata=_metadata(result),
                                    digest=digest, dev_examples=measured_on)
        seconds = store.read_metadata(version_dir)["export_seconds"]
        log(f"{task.name}: exported {version_dir}" + (f" (seed {trained.best['seed']})" if cfg.seeds > 1 else "")
            + f" in {seconds['save']:.0f} s, signatures measured in {seconds['measure']:.0f} s")
    result["export"] = str(version_dir)
    result["test_predictions"] = predict_test_splits(task, source, preprocessor, trained.holder.predictor, run.root,
                                                     log)


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
        # The seeds' spread and the bootstrap interval, so the model card quotes the figure a report does.
        **{key: result.get(key) for key in ("dev_mean", "dev_std", "dev_score_mean", "dev_score_std",
                                             "dev_score_ci95", "dev_score_ci95_method", "majority_score")},
        "data": result["data"],
    }


def predict_test_splits(task: Task, source: Source, preprocessor, predictor: KerasScorer, out_dir, log) -> dict:
    """Writes leaderboard predictions for the task's test splits found in ``source``."""
    written = {}
    for split in task.test_splits:
        if split not in source.available_splits(task):
            continue
        encoded = features.encode(source.load(task, split), task, preprocessor)
        predictions = predictor.predictions(task, {split: encoded})[split]
        path = write_predictions(out_dir, task, split, encoded.idx, predictions)
        written[split] = str(path)
        log(f"{task.name}: predicted {len(encoded)} {split} examples -> {path}")
    return written
