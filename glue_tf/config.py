"""Training configuration: one dataclass, per-task defaults, saved next to every output.

In the spirit of the TF Model Garden: plain dataclasses, overridable from the
command line, written to ``metadata.json`` so a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from glue_tf.tasks import Task

# The sentence-transformers all-MiniLM-L6-v2 checkpoint that `make pretrained` unpacks. Kept
# relative (as run_config.json records it, so a run resumes from any directory) and resolved
# against the project root by ``default_backbone_path``, never against the current directory.
DEFAULT_BACKBONE = "models/pretrained/all-minilm-l6-v2"


def project_root() -> Path:
    """The checkout this package runs from (the folder with pyproject.toml above ``glue_tf/``);
    the current directory for an installed wheel, which has no checkout."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_backbone_path() -> Path:
    """Where ``DEFAULT_BACKBONE`` lives, whatever the current directory."""
    return project_root() / DEFAULT_BACKBONE

# Learning rates for small BERTs such as MiniLM-L6 (a 6-layer, 384-wide model learns
# better at 1e-4 than at BERT-base's 2e-5 on the small tasks; Hugging Face's trainer
# on this checkpoint measured the same, see docs/REFERENCE.md). The large tasks
# have enough steps to prefer a smaller rate. Override with --learning-rate.
TASK_LEARNING_RATES = {
    "cola": 1e-4,
    "sst2": 5e-5,
    "mrpc": 1e-4,
    "stsb": 1e-4,
    "qqp": 5e-5,
    "mnli": 5e-5,
    "qnli": 5e-5,
    "rte": 1e-4,
    "wnli": 2e-5,
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides what a training run computes."""

    backbone: str = DEFAULT_BACKBONE
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None  # None: the task's default
    max_seq_length: int = 128
    precision: str = "auto"
    seed: int = 42
    dropout: float = 0.1
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    clip_norm: float = 1.0
    eval_batch_size: int = 64
    # Keras would turn XLA on by default; with a new batch shape at almost every
    # step (dynamic padding), XLA recompiles constantly and on CPU it is slower anyway.
    jit_compile: bool = False
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    # Seeds seed, seed+1, ...: mean and std are reported, the best by dev score is exported.
    seeds: int = 1
    # Also checkpoint every N steps inside an epoch (0: only at epoch ends).
    checkpoint_every: int = 200
    # Time each signature of the export on the dev examples and compile its grid shapes, so that where
    # it runs the fastest one is chosen (glue_tf.signature_choice). Off: the export records no figures
    # and serves serving_default (about 30-90 s less per task with MiniLM on 2 cores).
    measure_export: bool = True

    def for_task(self, task: Task) -> "TrainConfig":
        """This config with the task's defaults filled in."""
        lr = self.learning_rate if self.learning_rate is not None else TASK_LEARNING_RATES[task.name]
        return dataclasses.replace(self, learning_rate=lr)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
