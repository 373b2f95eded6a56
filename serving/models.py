"""The models the service answers with: discovery, validation and hot reload of export versions.

Serves the newest complete version of every task under ``<model_dir>/models/``
(TF Serving's version policy). A watcher thread looks for newer versions and
swaps each in only after it loaded and answered a warm-up request; a request
in flight keeps the version it started with. A version that is incomplete
(no ``saved_model.pb`` or ``metadata.json``: never renamed into place),
corrupt, for another task, or reached through a link out of the model folder
is refused with a log line, and the previous version keeps serving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

import numpy as np

from glue_tf import export
from glue_tf.tasks import TASKS, Task

log = logging.getLogger("glue_tf.serving")


@dataclasses.dataclass
class LoadedModel:
    task: Task
    version: int
    path: Path
    metadata: dict
    signature: object
    loaded_at: float

    def predict(self, columns: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Runs ``serving_default`` on text columns named as the task's fields."""
        import tensorflow as tf

        inputs = {name: tf.constant(columns[name], dtype=tf.string) for name in self.task.text_features}
        return {name: value.numpy() for name, value in self.signature(**inputs).items()}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_version(task: Task, path: Path) -> LoadedModel:
    """Loads and checks one version; raises ``ValueError`` with the reason if it is unusable."""
    signature, metadata = export.load(path)
    if metadata.get("task") != task.name:
        raise ValueError(f"metadata.json says task {metadata.get('task')!r}, not {task.name!r}")
    inputs = sorted(signature.structured_input_signature[1])
    if inputs != sorted(task.text_features):
        raise ValueError(f"signature inputs {inputs} are not the task's fields {list(task.text_features)}")
    expected = {"score"} if task.is_regression else {"probabilities", "label_id"}
    if not expected <= set(signature.structured_outputs):
        raise ValueError(f"signature outputs {sorted(signature.structured_outputs)} lack {sorted(expected)}")
    model = LoadedModel(task, int(path.name), path, metadata, signature, time.time())
    model.predict({name: ["warm-up"] for name in task.text_features})  # fails here, not on a client
    return model


class ModelRegistry:
    """Thread-safe map task -> newest good version, refreshed by ``refresh`` / a watcher thread."""

    def __init__(self, model_dir):
        self.model_dir = Path(model_dir)
        self._models: dict[str, LoadedModel] = {}
        self._refused: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    def refresh(self) -> list[str]:
        """Loads any newer complete version; returns a line per change or refusal."""
        changes = []
        root = self.model_dir / "models"
        if not root.is_dir():
            return changes
        for task in TASKS.values():
            if task.model_task:
                continue  # AX is answered by the MNLI model
            task_root = root / task.name
            if not task_root.is_dir() or not _inside(task_root, self.model_dir):
                continue
            current = self._models.get(task.name)
            for version in reversed(export.versions(task_root)):
                if current and version <= current.version:
                    break
                if (task.name, version) in self._refused:
                    continue
                path = task_root / str(version)
                if not _inside(path, self.model_dir):
                    reason = "resolves outside the model folder (symlink)"
                else:
                    try:
                        loaded = load_version(task, path)
                    except Exception as error:  # noqa: BLE001 - any failure refuses the version
                        reason = f"{type(error).__name__}: {error}"
                    else:
                        with self._lock:
                            self._models[task.name] = loaded
                        changes.append(f"{task.name}: serving version {version} from {path}")
                        log.info(changes[-1])
                        break
                self._refused[(task.name, version)] = reason
                changes.append(f"{task.name}: refused version {version} ({reason}); keeping "
                               f"{'version ' + str(current.version) if current else 'no model'}")
                log.warning(changes[-1])
        return changes

    def get(self, task_name: str) -> LoadedModel | None:
        task = TASKS[task_name]
        with self._lock:
            return self._models.get(task.predicted_by)

    def loaded(self) -> dict[str, LoadedModel]:
        with self._lock:
            return dict(self._models)

    def refused(self) -> dict[str, str]:
        return {f"{task}/{version}": reason for (task, version), reason in self._refused.items()}

    def start_watching(self, interval: float) -> None:
        if self._watcher or interval <= 0:
            return

        def watch():
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - the watcher must outlive a bad scan
                    log.exception("model folder scan failed")

        self._watcher = threading.Thread(target=watch, name="model-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
