"""Runs ``glue-tf`` with a crash injected at one exact point: ``python crash_driver.py POINT -- ARGS``.

POINT is where the process SIGKILLs itself, after the write has started and
before it is committed (the window a power cut or OOM kill can hit):
- ``checkpoint``: right after a checkpoint's weights file is written, before state.json names it;
- ``export``: right after the SavedModel is written to its temporary folder, before the rename;
- ``exported``: right after the export is renamed into place, before the run records its result.
The product code has no hooks for this; the driver wraps library functions.
"""

import os
import signal
import sys


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    point, args = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    if point == "checkpoint":
        from glue_tf import checkpoints

        original = checkpoints.save_weights_atomically

        def save_then_die(model, path):
            original(model, path)
            if "epoch-" in path.name:
                _die()

        checkpoints.save_weights_atomically = save_then_die
    elif point == "export":
        import tensorflow as tf

        original_save = tf.saved_model.save

        def save_then_die(*a, **kw):
            original_save(*a, **kw)
            _die()

        tf.saved_model.save = save_then_die
    elif point == "exported":
        from glue_tf import export

        original_export = export.export

        def export_then_die(*a, **kw):
            original_export(*a, **kw)
            _die()

        export.export = export_then_die
    else:
        raise SystemExit(f"unknown crash point {point}")
    from glue_tf.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
