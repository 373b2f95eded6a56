"""The layout of a training run's output folder (``--out``), named in one place.

    <out>/run_config.json          the configuration it was made with (glue_tf.run_config)
    <out>/run.log                  the run log (glue_tf.runlog)
    <out>/work/<task>/             checkpoint/, best.weights.h5, seed.json (SeedFiles), result.json
    <out>/work/<task>/seed-<N>/    a seed's SeedFiles, when a task trains several
    <out>/tensorboard/<task>/      TensorBoard runs (train, validation, dev), [seed-<N>/]
    <out>/models/<task>/<version>/ exports (glue_tf.exports.store reads this part)
    <out>/predictions/             leaderboard files (glue_tf.submission owns this part)
    <out>/report.md, .json, .png   the report (glue_tf.report)

A task's ``result.json`` is what makes it finished (``glue_tf.run_config.finished_result``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class SeedFiles:
    """The files of one seed's training: what makes it finished, its best weights, its checkpoints."""

    folder: Path
    tensorboard: Path

    @property
    def record(self) -> Path:
        """``seed.json``: written when the seed has finished, so a rerun does not train it again."""
        return self.folder / "seed.json"

    @property
    def best_weights(self) -> Path:
        return self.folder / "best.weights.h5"

    @property
    def checkpoint(self) -> Path:
        """The folder of ``glue_tf.checkpoints.TrainingState``."""
        return self.folder / "checkpoint"


@dataclasses.dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "run_config.json"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    def work(self, task_name: str, seed: int | None = None) -> Path:
        """A task's working folder; a seed's own inside it when the task trains several (``seed`` not None)."""
        folder = self.root / "work" / task_name
        return folder if seed is None else folder / f"seed-{seed}"

    def seed_files(self, task_name: str, seed: int | None = None) -> SeedFiles:
        """A seed's files; ``seed`` None: the task trains one seed, whose files sit in the task's folder."""
        return SeedFiles(self.work(task_name, seed), self.tensorboard(task_name, seed))

    @property
    def models(self) -> Path:
        """The exports' folder, ``models/<task>/<version>/`` below it; what the service serves."""
        return self.root / "models"

    def result(self, task_name: str) -> Path:
        return self.work(task_name) / "result.json"

    def tensorboard(self, task_name: str, seed: int | None = None) -> Path:
        folder = self.root / "tensorboard" / task_name
        return folder if seed is None else folder / f"seed-{seed}"
