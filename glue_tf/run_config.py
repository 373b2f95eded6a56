"""One configuration per output folder, so continuing a run never mixes two experiments.

The first ``train``/``train-all`` into ``--out`` records its configuration (the
training config and the data source) in ``run_config.json``. Later runs into the
same folder continue it — finished tasks are skipped, interrupted ones resume —
only if everything that decides the results is the same; otherwise they are
refused with the keys that differ, unless ``--overwrite`` starts the folder's
tasks afresh.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from glue_tf import precision
from glue_tf.checkpoints import atomic_write_text
from glue_tf.config import TrainConfig
from glue_tf.errors import GlueTfError
from glue_tf.run_dir import RunDir

# Settings that change speed or bookkeeping, not what is computed.
NOT_COMPARED = ("eval_batch_size", "checkpoint_every", "jit_compile", "measure_export", "logging_steps")


# The unit of the scores in the folder's results and checkpoints. Folders written when
# scores were fractions have none recorded, so continuing one is refused, not mixed.
SCORE_UNIT = "points"


class ConfigMismatchError(GlueTfError, ValueError):
    """``--out`` holds a run made with another configuration."""


def describe(config: TrainConfig, data_source: str) -> dict:
    recorded = {k: v for k, v in config.to_dict().items() if k not in NOT_COMPARED}
    return {**recorded, "data": data_source, "score_unit": SCORE_UNIT}


def differences(saved: dict, current: dict) -> dict[str, tuple]:
    keys = sorted(set(saved) | set(current))
    return {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}


def check_or_record(out_dir, config: TrainConfig, data_source: str, overwrite: bool, task_names: list[str]) -> None:
    """Records the configuration, or checks it against the recorded one (see module docstring)."""
    out_dir = Path(out_dir)
    path = RunDir(out_dir).config
    current = describe(config, data_source)
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if "precision" in saved:  # recorded in an older spelling (mixed_bfloat16): the same run as bfloat16
            saved["precision"] = precision.ALIASES.get(saved["precision"], saved["precision"])
        changed = differences(saved, current)
        if changed and not overwrite:
            shown = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
            raise ConfigMismatchError(
                f"{out_dir} holds a run with another configuration ({shown}). "
                "Use another --out, or --overwrite to retrain its tasks with this one."
            )
    if overwrite:
        for name in task_names:  # checkpoints and results of the old configuration
            shutil.rmtree(RunDir(out_dir).work(name), ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True))


def finished_result(out_dir, task_name: str) -> dict | None:
    """The result of a task this run already trained and exported, or None."""
    from glue_tf.exports import store

    path = RunDir(out_dir).result(task_name)
    if not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    exported = result.get("export")
    if not exported or Path(exported).name not in {str(v) for v in store.versions(Path(exported).parent)}:
        return None
    return result
