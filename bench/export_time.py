"""Where a CoLA export's seconds go, for several exports in a row in one process (issue 27: a later export
reuses the first one's timings).

    python -m bench.export_time --exports 3

Builds the default backbone's CoLA classifier (untrained: an export's cost does not depend on the
weights) and exports it ``--exports`` times with the dev split to measure on, as ``train`` does, timing
the functions of ``glue_tf/export.py`` that do each phase. The timing cache starts empty (a fresh
``GLUE_TF_XLA_CACHE`` folder), so the first export measures and the later ones reuse. One JSON line each.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time

from bench.common import BACKBONE, GLUE_DIR

PHASES = {  # phase name -> (module attribute path) of the function timed for it
    "module_init": ("GlueServing", "__init__"),
    "bf16_rebuild": ("model_lib", "rebuild"),
    "saved_model_save": ("tf.saved_model", "save"),
    "measure": (None, "_measure"),
    "describe": (None, "_describe"),
}


def _timed(seconds: dict, name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--glue-dir", default=GLUE_DIR)
    parser.add_argument("--exports", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["GLUE_TF_XLA_CACHE"] = tempfile.mkdtemp(prefix="export-time-xla-")  # an empty timing cache
    import tensorflow as tf

    from glue_tf import export
    from glue_tf.config import TrainConfig
    from glue_tf.data.sources import TsvSource
    from glue_tf.task_model import TaskModel
    from glue_tf.tasks import TASKS

    task = TASKS["cola"]
    built = TaskModel(task, TrainConfig(backbone=args.backbone)).build(100)
    dev = TsvSource(args.glue_dir).examples(task, "validation")
    seconds: dict[str, float] = {}
    owners = {"GlueServing": export.GlueServing, "model_lib": export.model_lib, "tf.saved_model": tf.saved_model,
              None: export}
    for name, (owner, attribute) in PHASES.items():
        setattr(owners[owner], attribute, _timed(seconds, name, getattr(owners[owner], attribute)))
    out = tempfile.mkdtemp(prefix="export-time-")
    for number in range(1, args.exports + 1):
        seconds.clear()
        started = time.perf_counter()
        export.export(built.model, built.preprocessor, task, out, metadata={}, dev_examples=dev)
        print(json.dumps({"export": number, "total_s": round(time.perf_counter() - started, 1),
                          **{name: round(value, 1) for name, value in seconds.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
