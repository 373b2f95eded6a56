"""A source whose dev splits are a seeded slice held out from the training split: what ``tune`` selects on.

Selecting a recipe on dev and then reporting dev is optimistic; ``glue-tf tune``
scores every grid point on this slice instead, so dev stays a clean test of the
chosen recipe. The slice depends only on ``seed`` and the training split, so every
point and every seed of a sweep selects on the same examples. Each of the task's
dev splits (MNLI has two) is the same slice; no test split is offered.
"""

from __future__ import annotations

import numpy as np

from glue_tf.data.sources import Source, _tensor_columns
from glue_tf.tasks import Task

FRACTION = 0.1
SEED = 2828  # the slice's seed, recorded in the recipe; not a training seed


class HeldOutSource(Source):
    """``inner``'s training split cut in two: ``train`` (the rest) and every dev split (the held-out slice)."""

    def __init__(self, inner: Source, fraction: float = FRACTION, seed: int = SEED):
        self.inner, self.fraction, self.seed = inner, fraction, seed
        self._cache: dict[str, tuple[list[dict], list[dict]]] = {}

    def describe(self) -> str:
        return f"{self.inner.describe()} train split, {100 * self.fraction:g}% held out (seed {self.seed})"

    def _parts(self, task: Task) -> tuple[list[dict], list[dict]]:
        """``(kept, held_out)`` rows of the training split, each sorted by ``idx``."""
        if task.name not in self._cache:
            rows = self.inner.examples(task, "train")
            held = max(1, int(round(self.fraction * len(rows))))
            chosen = np.zeros(len(rows), bool)
            chosen[np.random.default_rng(self.seed).permutation(len(rows))[:held]] = True
            self._cache[task.name] = ([r for r, c in zip(rows, chosen) if not c], [r for r, c in zip(rows, chosen) if c])
        return self._cache[task.name]

    def available_splits(self, task: Task) -> list[str]:
        return ["train", *task.dev_splits] if "train" in self.inner.available_splits(task) else []

    def missing_reason(self, task: Task) -> str:
        return "" if self.available_splits(task) else f"no train split ({self.inner.locate(task, 'train')})"

    def locate(self, task: Task, split: str) -> str:
        part = "the rest" if split == "train" else "the held-out slice"
        return f"{self.inner.locate(task, 'train')} ({part})"

    def examples(self, task: Task, split: str) -> list[dict]:
        if split not in self.available_splits(task):
            raise KeyError(f"{task.name}: {self.describe()} has no {split} split (it offers train and dev only)")
        kept, held = self._parts(task)
        return kept if split == "train" else held

    def load(self, task: Task, split: str):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(_tensor_columns(task, self.examples(task, split)))
