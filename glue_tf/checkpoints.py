"""Training state on disk, written so that a kill at any moment loses at most one checkpoint interval.

States are taken at the end of every epoch and every N steps inside one. The
weights of epoch N (step S) go to ``epoch-N[-step-S].weights.h5`` (model and optimizer
variables, so the schedule and Adam moments resume exactly), then ``state.json``
is atomically replaced to point at them, then older files are removed. A
reader therefore always finds a state and the weights it names, complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glue_tf.errors import GlueTfError
from glue_tf.storage import writing


class CheckpointMissingError(GlueTfError, FileNotFoundError):
    """``state.json`` names weights that are not there: the run folder was changed by hand."""


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing("a file", path):
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def save_weights_atomically(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the .weights.h5 suffix Keras needs
    with writing("model weights", path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save_weights(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


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
