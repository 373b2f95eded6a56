"""``train`` and ``train-all``: one task, or every GLUE task whose data is found one after the other,
then the folder's report. Both train a task through :func:`train_one`.

A task without training data here is skipped with one line, unless a model for
it already exists in the output folder, in which case its dev split is scored
and its test split predicted with that export (QNLI-dev with a QNLI model
trained elsewhere, AX with the MNLI model). Before each task one line gives the
overall progress (``progress_line``); the last names the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from glue_tf import backbones, distribute, recipes, report, run_config, storage, submission
from glue_tf.config import TrainConfig
from glue_tf.data.sources import Source
from glue_tf.errors import NotTrainableError
from glue_tf.exports import store
from glue_tf.run_dir import RunDir
from glue_tf.runlog import RunLog
from glue_tf.tasks import TASKS, Task


def _missing_for_training(task: Task, source: Source) -> list[str]:
    available = set(source.available_splits(task))
    return [split for split in ("train", *task.dev_splits) if split not in available]


def _score_with_export(task: Task, source: Source, out_dir: Path, log) -> dict | None:
    """Scores ``task`` with an existing export (its own, or its model task's); None if there is none."""
    from glue_tf.exports.predictor import score_export
    from glue_tf.predict_files import predictor_for

    path = store.latest(out_dir, task.predicted_by)
    if path is None:
        return None
    predictor = predictor_for(path, 64, None)  # the signature GLUE_TF_PRECISION (else auto) picks
    log(f"{task.name}: scoring with {path} ({predictor.reason})")
    available = source.available_splits(task)
    scored = score_export(predictor, task, source, [s for s in task.dev_splits if s in available])
    dev = scored["components"] if scored["score"] is not None else None
    result = {"task": task.name, "export": str(path), "dev": dev, "scored_with_export": True}
    for split in task.test_splits:
        if split in available:
            examples = source.examples(task, split)
            predictions = predictor.outputs(task, examples)
            written = submission.write_predictions(out_dir, task, split, [e["idx"] for e in examples], predictions)
            log(f"{task.name}: predicted {len(examples)} {split} examples with {path} -> {written}")
    return result


def _duration(seconds: float) -> str:
    """``45s``, ``12m 03s``, ``2h 05m``: short enough for a log line, exact enough for a wait."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds // 60 % 60:02d}m"


def progress_line(number: int, total: int, task_name: str, elapsed: float, trained_seconds: list[float],
                  to_train: int) -> str:
    """The suite's progress before task ``number`` of ``total``: elapsed time and an estimate of the rest.

    The estimate is the mean time of the tasks trained so far times the ``to_train``
    tasks left that may need training (this one included); before any task has been
    trained there is nothing to go on, and the line says so.
    """
    if trained_seconds:
        left = f"about {_duration(sum(trained_seconds) / len(trained_seconds) * to_train)} left"
    else:
        left = "time left unknown until a task has been trained"
    return f"train-all: task {number} of {total} ({task_name}), {_duration(elapsed)} elapsed, {left}"


def finished_results(out_dir, exclude=()) -> dict:
    """Results of every task already trained and exported into ``out_dir``, for the folder's report."""
    found = {}
    for name in TASKS:
        if name not in exclude:
            result = run_config.finished_result(out_dir, name)
            if result is not None:
                found[name] = result
    return found


def train_one(task: Task, source: Source, config: TrainConfig, out_dir, log, strategy, strategy_name: str,
              verbose="auto", overwrite: bool = False, label: str = "", explicit: frozenset = frozenset()
              ) -> tuple[dict, bool]:
    """One task, as ``train`` and ``train-all`` both run it: ``(result, True)`` if trained now, or
    ``(result, False)`` where this folder's run (of the same configuration) already exported it.
    ``label`` starts its log lines (default: the task's name); the recipe's fields for the task fill in
    every setting but the ``explicit`` ones (``glue_tf.recipes.task_config``)."""
    from glue_tf.training import train_task

    config = recipes.task_config(config, task.name, explicit)
    label = label or task.name
    done = None if overwrite else run_config.finished_result(out_dir, task.name)
    if done is not None:
        log(f"{label}: already exported ({done['export']}, dev score {done['dev_score']:.2f}); "
            "nothing to do (--overwrite retrains)")
        return done, False
    log(f"{label}: training")
    return train_task(task, source, config, out_dir, strategy=strategy, strategy_name=strategy_name, log=log,
                      verbose=verbose), True


def _start(source: Source, config: TrainConfig, out_dir: Path, tasks: list[Task], overwrite: bool):
    """Checks the backbone and the folder before anything slow; returns the strategy, and the run log after
    the folder's configuration is recorded or checked (the chief's job)."""
    backbones.check_spec(config.backbone)
    recipes.check_fresh_seeds(config)
    storage.ensure_writable(out_dir)
    strategy, strategy_name = distribute.select_strategy()
    chief = distribute.is_chief(strategy)
    if chief:
        run_config.check_or_record(out_dir, config, source.describe(), overwrite, [t.name for t in tasks])
    return strategy, strategy_name, chief, RunLog(RunDir(out_dir).log, enabled=chief)


def finish(out_dir, source: Source, results: dict, skipped: dict, below_majority: str, wall_seconds=None) -> dict:
    """The folder's report, after the test predictions of tasks below the majority class follow the policy."""
    counts = report.counted(results, below_majority)
    for name, whose in counts.items():
        submission.use_majority(out_dir, TASKS[name], source, whose == "majority")
    return report.write(out_dir, results, skipped, wall_seconds=wall_seconds, below_majority=below_majority)


def train(task: Task, source: Source, config: TrainConfig, out_dir, verbose="auto", overwrite: bool = False,
          explicit: frozenset = frozenset(), below_majority: str = "model") -> dict:
    """``glue-tf train``: one task into ``out_dir``, then the folder's report; returns the task's result."""
    if task.eval_only:
        raise NotTrainableError(f"{task.name} has no training data; it is predicted with the {task.predicted_by} model")
    out_dir = Path(out_dir)
    strategy, strategy_name, chief, log = _start(source, config, out_dir, [task], overwrite)
    result, _ = train_one(task, source, config, out_dir, log, strategy, strategy_name, verbose, overwrite,
                          explicit=explicit)
    if chief:
        finish(out_dir, source, {**finished_results(out_dir, exclude=[task.name]), task.name: result}, {},
               below_majority)
    return result


def train_all(source: Source, config: TrainConfig, out_dir, tasks: list[Task] | None = None, verbose="auto",
              overwrite: bool = False, explicit: frozenset = frozenset(), below_majority: str = "model") -> dict:
    """Trains every task in ``tasks`` (default: all) whose data exists; writes and returns the report.

    Into a folder that holds a run of the same configuration, tasks already
    exported are skipped and an interrupted task resumes from its checkpoint.
    """
    out_dir = Path(out_dir)
    tasks = tasks or list(TASKS.values())
    strategy, strategy_name, chief, log = _start(source, config, out_dir, tasks, overwrite)
    started = time.perf_counter()
    results, skipped = {}, {}
    log(f"train-all: {len(tasks)} tasks from {source.describe()} into {out_dir}")
    # Tasks predicted by another task's model come after it.
    ordered = [t for t in tasks if not t.model_task] + [t for t in tasks if t.model_task]
    trained_seconds = []
    for number, task in enumerate(ordered, start=1):
        prefix = f"[{number}/{len(ordered)}] {task.name}"
        to_train = sum(not t.eval_only for t in ordered[number - 1:])
        log(progress_line(number, len(ordered), task.name, time.perf_counter() - started, trained_seconds, to_train))
        missing = _missing_for_training(task, source) if not task.eval_only else ["train"]
        if not missing:
            task_started = time.perf_counter()
            results[task.name], trained = train_one(task, source, config, out_dir, log, strategy, strategy_name,
                                                    verbose, overwrite, label=prefix, explicit=explicit)
            if not trained:
                continue
            trained_seconds.append(time.perf_counter() - task_started)
            row = results[task.name]
            speed = row["train_examples_per_second"]
            log(
                f"{prefix}: done in {row['wall_seconds']:.0f}s, dev score {row['dev_score']:.2f}, "
                + (f"{speed:.1f} train ex/s, " if speed else "no epochs left to train, ")
                + f"padding efficiency {100 * row['padding_efficiency']:.1f}%"
            )
            continue
        scored = _score_with_export(task, source, out_dir, log) if chief else None
        if scored is not None:
            results[task.name] = scored
            log(f"{prefix}: no training data ({', '.join(missing)}); scored with the existing model {scored['export']}")
            continue
        if task.eval_only:
            reason = f"needs the {task.predicted_by} model, which was not trained (no {task.predicted_by} data)"
        else:
            reason = source.missing_reason(task) or "no " + ", ".join(
                f"{split} split ({source.locate(task, split)})" for split in missing
            )
        skipped[task.name] = reason
        log(f"{prefix}: skipped, {reason}")
    wall = time.perf_counter() - started
    if not chief:
        return {}
    results.update(finished_results(out_dir, exclude=results))  # tasks of earlier --tasks subsets
    written = finish(out_dir, source, results, skipped, below_majority, wall_seconds=wall)
    log(f"train-all: {len(ordered)} tasks in {_duration(wall)}; {written['summary_line']}; "
        f"report at {out_dir / 'report.md'} (and report.json)")
    return written
