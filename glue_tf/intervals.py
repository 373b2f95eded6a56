"""95% bootstrap intervals over dev examples: of a task's score, and of the difference of two runs.

The statistic is the official task score (``glue_tf.metrics``) recomputed on
resampled dev rows, averaged over the run's seeds (the reported figure is the
mean over seeds), so the interval says how much the figure would move on
another dev set of the same size. Each dev split is resampled on its own (MNLI's
matched and mismatched keep their sizes). A paired difference resamples the same
rows for both runs, which is what makes a small difference on a small dev set
detectable at all.

``scipy.stats.bootstrap`` computes the interval, BCa first (up to
``BCA_MAX_ROWS`` dev rows); where BCa is undefined (a degenerate bootstrap
distribution, e.g. two identical runs, whose every resampled difference is 0)
it falls back to the percentile method. The resampling seed is fixed, so a
report is reproducible to the last digit.
"""

from __future__ import annotations

import warnings

import numpy as np

from glue_tf import metrics

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 28  # fixed: the same predictions always give the same interval
# BCa's jackknife recomputes the score once per dev row left out: minutes for QQP's and MNLI's dev sets, where
# the percentile interval, which BCa corrects for small samples, is as good.
BCA_MAX_ROWS = 5000


def _score(task, seeds: list[dict], rows: dict[str, np.ndarray]) -> float:
    """The task score of ``rows`` of each split, averaged over ``seeds`` (each ``dev_predictions.load``)."""
    scores = []
    for seed in seeds:
        per_split = {
            split: metrics.compute_metrics(task, seed[split]["labels"][r], seed[split]["predictions"][r])
            for split, r in rows.items()
        }
        scores.append(metrics.task_score(task, metrics.score_components(task, per_split)))
    return float(np.mean(scores))


def _splits(task, seeds: list[dict]) -> list[str]:
    return [split for split in seeds[0] if split in task.dev_splits]


def bootstrap(statistic, sizes: list[int]) -> dict:
    """The interval of ``statistic(*rows)`` (one index array per sample of ``sizes``) over resamples.

    Returns ``{"ci95": [lo, hi], "method": "BCa" | "percentile"}``.
    """
    from scipy import stats

    data = tuple(np.arange(size) for size in sizes)

    def run(method: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns where BCa is undefined; we fall back below
            return stats.bootstrap(data, statistic, n_resamples=RESAMPLES, vectorized=False, paired=False,
                                   confidence_level=CONFIDENCE, method=method,
                                   rng=np.random.default_rng(SEED)).confidence_interval

    method = "BCa" if sum(sizes) <= BCA_MAX_ROWS else "percentile"
    interval = run(method)
    if not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        interval, method = run("percentile"), "percentile"
    return {"ci95": [float(interval.low), float(interval.high)], "method": method}


def task_interval(task, seeds: list[dict]) -> dict:
    """95% interval of the task's mean-over-seeds dev score; ``seeds``: ``dev_predictions.load`` per seed."""
    splits = _splits(task, seeds)

    def statistic(*rows):
        return _score(task, seeds, dict(zip(splits, rows)))

    return bootstrap(statistic, [len(seeds[0][split]["labels"]) for split in splits])


def _whole(seeds: list[dict], splits: list[str]) -> dict[str, np.ndarray]:
    return {split: np.arange(len(seeds[0][split]["labels"])) for split in splits}


def paired_difference(runs_a: dict, runs_b: dict, tasks: dict) -> dict:
    """Run A minus run B, per task and for the mean over tasks, with paired-bootstrap intervals.

    ``runs_a``/``runs_b``: task name -> seeds' dev predictions over the same dev rows;
    ``tasks``: task name -> ``Task``. The mean over tasks is bootstrapped with every
    task's rows resampled together. Returns ``{"tasks": {name: {...}}, "mean": {...}}``,
    each with ``difference``, ``ci95`` and ``method``.
    """
    names = list(runs_a)
    layout = [(name, split) for name in names for split in _splits(tasks[name], runs_a[name])]

    def differences(rows: dict) -> dict[str, float]:
        return {name: _score(tasks[name], runs_a[name], rows[name]) - _score(tasks[name], runs_b[name], rows[name])
                for name in rows}

    def regroup(rows) -> dict:
        grouped: dict[str, dict] = {}
        for (name, split), r in zip(layout, rows):
            grouped.setdefault(name, {})[split] = r
        return grouped

    whole = {name: _whole(runs_a[name], _splits(tasks[name], runs_a[name])) for name in names}
    observed = differences(whole)
    out = {"tasks": {}}
    for name in names:
        splits = list(whole[name])
        sizes = [len(whole[name][split]) for split in splits]
        found = bootstrap(lambda *rows, name=name, splits=splits: differences({name: dict(zip(splits, rows))})[name],
                          sizes)
        out["tasks"][name] = {"difference": observed[name], **found}
    found = bootstrap(lambda *rows: float(np.mean(list(differences(regroup(rows)).values()))),
                      [len(whole[name][split]) for name, split in layout])
    out["mean"] = {"difference": float(np.mean(list(observed.values()))), **found}
    return out


def shows_difference(ci95: list[float]) -> bool:
    """False where the interval covers 0: the data do not show a difference."""
    return not (ci95[0] <= 0.0 <= ci95[1])
