"""Training state on disk, written so that a kill at any moment loses at most one checkpoint interval.

States are taken at the end of every epoch and every N steps inside one. The
weights of epoch N (step S) go to ``epoch-N[-step-S].weights.h5`` (model and optimizer
variables, so the schedule and Adam moments resume exactly), then ``state.json``
is atomically replaced to point at them, then older files are removed. A
reader therefore always finds a state and the weights it names, complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

from glue_tf.errors import GlueTfError
from glue_tf.storage import writing


class CheckpointMissingError(GlueTfError, FileNotFoundError):
    """``state.json`` names weights that are not there: the run folder was changed by hand."""


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), "a file")


def atomic_write_bytes(path: Path, data, what: str) -> None:
    """Writes ``data`` to a temporary file beside ``path``, syncs it, then renames it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(what, path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def save_weights_atomically(model, path: Path) -> None:
    with _weights_file(model) as data:
        atomic_write_bytes(path, data, "model weights")


@contextlib.contextmanager
def _weights_file(model):
    """The bytes of ``model.save_weights``'s ``.weights.h5`` file, built in memory.

    Keras writes that file through HDF5 and does not close it when a write fails: on a
    full disk HDF5 retries at interpreter exit, prints a traceback per dataset and
    crashes (SIGSEGV) instead of exiting with our error. In memory, HDF5 cannot fail
    that way; the one write to disk is Python's, which fails cleanly. The cost is one
    transient copy of the weights (with their optimizer moments) in memory.
    """
    from keras.src.saving import saving_lib  # what model.save_weights runs, given a buffer

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    store.close()
    with buffer.getbuffer() as view:
        yield view


class TrainingState:
    """Reads and writes ``<dir>/state.json`` and the weights it names."""

    def __init__(self, directory: Path, writable: bool = True):
        self.directory = Path(directory)
        self.writable = writable
        self.state_path = self.directory / "state.json"

    def load(self) -> dict | None:
        if not self.state_path.is_file():
            return None
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if not (self.directory / state["weights"]).is_file():
            raise CheckpointMissingError(
                f"{self.state_path} names {state['weights']}, which is missing; "
                "delete that folder to train the task afresh, or restore the file"
            )
        return state

    def restore(self, model) -> dict | None:
        """Loads the latest weights (and optimizer state) into ``model``; returns the state."""
        state = self.load()
        if state is None:
            return None
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        return state

    def save(self, model, state: dict) -> None:
        if not self.writable:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        step = f"-step-{state['step']}" if state.get("step") else ""
        name = f"epoch-{state['epoch']}{step}.weights.h5"
        save_weights_atomically(model, self.directory / name)
        state = {**state, "weights": name}
        atomic_write_text(self.state_path, json.dumps(state, indent=2))
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)
