"""Training configuration: one dataclass, per-task defaults, saved next to every output.

In the spirit of the TF Model Garden: plain dataclasses, overridable from the
command line, written to ``metadata.json`` so a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from glue_tf.precision import flag_value
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


def _setting(default, help: str, **flag):
    """A TrainConfig field and its command-line flag (``glue_tf.config_flags``): its help, and
    ``flag``/``choices``/``negative``/``parse`` (argparse's ``type``) where the generated ones are not right."""
    return dataclasses.field(default=default, metadata={"help": help, **flag})


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides what a training run computes, and how it reports.

    Every field is a ``glue-tf train``/``train-all`` flag, generated from this class.
    """

    backbone: str = _setting(DEFAULT_BACKBONE, "KerasHub preset name, Keras preset folder or Hugging Face BERT folder")
    epochs: int = _setting(3, "passes over the training data")
    batch_size: int = _setting(32, "examples per optimizer step (over all replicas)")
    learning_rate: float | None = _setting(None, "peak learning rate; default: the task's (TASK_LEARNING_RATES in config.py)")
    max_seq_length: int = _setting(128, "tokens per example after packing; longer ones are truncated")
    precision: str = _setting("auto", "auto, float32, bfloat16 or float16 (mixed_bfloat16 and mixed_float16 too); "
                                      "auto: bfloat16 where the CPU or GPU has bf16 units, else float16 on GPUs "
                                      "and float32 on CPUs (glue_tf/precision.py)", parse=flag_value)
    seed: int = _setting(42, "seeds the weights of the head, dropout and the batch order")
    dropout: float = _setting(0.1, "dropout rate of the classification head")
    weight_decay: float = _setting(0.01, "AdamW's decoupled weight decay (biases and LayerNorm excluded)")
    warmup_fraction: float = _setting(0.1, "share of the steps spent warming the learning rate up from 0")
    clip_norm: float = _setting(1.0, "clip gradients to this global norm (0: no clipping)")
    # glue_tf.optimization.FusedAdamW; docs/BENCHMARKS.md times the three (python -m bench.step_profile).
    optimizer_apply: str = _setting("xla", "how AdamW's update runs on one replica: xla (one compiled pass per "
                                           "variable), raw (TensorFlow's Adam kernels) or keras (Keras' own passes)",
                                    choices=("xla", "raw", "keras"))
    eval_batch_size: int = _setting(64, "examples per call when scoring dev and predicting test")
    # None: on GPUs only (glue_tf.precision.xla_default). With dynamic padding every new batch width is a
    # compilation, so under XLA widths are rounded up to steps of 16 (glue_tf.features.XLA_WIDTH_MULTIPLE).
    jit_compile: bool | None = _setting(None, "XLA-compile the train step (default: on GPUs, off on CPUs)")
    max_train_examples: int | None = _setting(None, "train on a seeded random subset (smoke runs)")
    max_eval_examples: int | None = _setting(None, "score a seeded random dev subset (smoke runs)")
    # Seeds seed, seed+1, ...: mean and std are reported, the best by dev score is exported.
    seeds: int = _setting(1, "train seeds seed..seed+K-1; report mean and std, export the best")
    checkpoint_every: int = _setting(200, "also checkpoint every N steps inside an epoch (0: only at epoch ends)")
    # Time each signature of the export on the dev examples and compile its grid shapes, so that where
    # it runs the fastest one is chosen (glue_tf.exports.choice). Off: the export records no figures
    # and serves serving_default (about 30-90 s less per task with MiniLM on 2 cores).
    measure_export: bool = _setting(True, "export without timing its signatures: quicker, but serves serving_default",
                                    negative="--skip-export-measurements")
    logging_steps: int = _setting(0, "also log the loss and learning rate every N steps (0: once per epoch)")
    # glue_tf.recipes: the CLI's default is the committed recipe of the default backbone; None here (the library's
    # default) and `--recipe none` are the built-in defaults. Flags given on the command line win over its fields.
    recipe: str | None = _setting(None, "per-task recipe JSON from `glue-tf tune` (default: recipes/<backbone>.json of "
                                        "the default backbone where committed; none: the built-in defaults)")

    def for_task(self, task: Task) -> "TrainConfig":
        """This config with the task's defaults filled in."""
        lr = self.learning_rate if self.learning_rate is not None else TASK_LEARNING_RATES[task.name]
        return dataclasses.replace(self, learning_rate=lr)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
