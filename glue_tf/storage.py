"""Output folders that fail early and clearly: not writable, too little space, a write that fails.

Training writes checkpoints, weights and exports for an hour or more; a full disk
or a read-only folder must be a one-line error naming the folder (before training
where it can be foreseen), not a traceback from deep inside h5py or TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from glue_tf.errors import GlueTfError

# Bytes written per model parameter at peak: checkpoint (weights + two Adam moments),
# its replacement being written, best weights, the export and its temporary copy.
BYTES_PER_PARAMETER = 4 * 9


class OutputError(GlueTfError, RuntimeError):
    """An output folder or file that cannot be written; the message says what to do."""


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in _FULL:
        return f"{os.strerror(error.errno)} (disk full or over quota)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    # TensorFlow and h5py put the OS error's text in their own messages.
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    full = next((os.strerror(code) for code in _FULL if os.strerror(code) in text), None)
    return f"{full} (disk full or over quota)" if full else text


def ensure_writable(folder) -> Path:
    """Creates ``folder`` if needed and proves a file can be written there."""
    folder = Path(folder)
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
    except OSError as error:
        raise OutputError(f"cannot write to {folder}: {_reason(error)}; choose another --out or fix its permissions") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return folder


def check_free_space(folder, parameters: int) -> None:
    """Refuses to start when the folder's disk cannot hold the run's checkpoints and export."""
    needed = parameters * BYTES_PER_PARAMETER
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OutputError(
            f"{folder} has {free / 2**20:.0f} MiB free; training this model needs about {needed / 2**20:.0f} MiB "
            "for checkpoints and the export. Free some space or choose another --out."
        )


@contextlib.contextmanager
def writing(what: str, path):
    """Turns a failed write (OSError, or TensorFlow's own I/O errors) into an ``OutputError``."""
    try:
        yield
    except OutputError:
        raise
    except Exception as error:  # h5py and TensorFlow raise their own types for I/O failures
        import sys

        tf = sys.modules.get("tensorflow")
        io_error = isinstance(error, OSError) or (tf is not None and isinstance(error, tf.errors.OpError))
        if not io_error:
            raise
        raise OutputError(
            f"cannot write {what} to {path}: {_reason(error)}. Free space or fix the folder, then run the same "
            "command again: training resumes from its last checkpoint."
        ) from error
