"""The models the service answers with: discovery, version policy, labels and hot reload of export versions.

Which versions of a task are served follows TF Serving's version policy
(``latest`` N, ``all`` or ``specific`` versions; latest 1 by default) over the
complete versions under ``<model_dir>/models/<task>/``; labels such as
``stable`` or ``canary`` name versions. A watcher thread rescans the folder and
loads each newly wanted version, which must answer a warm-up request before it
serves; only then are versions the policy no longer wants unloaded, so a task
never drops to no model because a newer version failed. A request in flight
keeps the version it started with. A version that is incomplete (no
``saved_model.pb`` or ``metadata.json``: never renamed into place), corrupt,
for another task, or reached through a link out of the model folder is refused
with a log line.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np

from glue_tf import export
from glue_tf.tasks import TASKS, Task
from serving.errors import ApiError, NotFound
from serving.model_config import ModelConfig, VersionPolicy

log = logging.getLogger("glue_tf.serving")
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_CONFIG = ModelConfig(VersionPolicy("latest"), {})


@dataclasses.dataclass
class LoadedModel:
    task: Task
    version: int
    path: Path
    metadata: dict
    signatures: dict
    loaded_at: float

    @functools.cached_property
    def signature_defs(self) -> dict:
        """The SignatureDefs as TF Serving's metadata API renders them (read once, on first ask)."""
        return export.signature_def_map(self.path)

    def signature(self, name: str | None):
        signature = self.signatures.get(name or DEFAULT_SIGNATURE)
        if signature is None:
            raise ApiError(f'Serving signature name: "{name}" not found in signature def; this export has '
                           f"{sorted(self.signatures)}", code="unknown_signature")
        return signature

    def predict(self, columns: dict[str, list[str]], signature: str | None = None) -> dict[str, np.ndarray]:
        """Runs a signature (``serving_default`` unless named) on text columns named as the task's fields."""
        import tensorflow as tf

        function = self.signature(signature)
        inputs = {name: tf.constant(columns[name], dtype=tf.string) for name in self.task.text_features}
        return {name: value.numpy() for name, value in function(**inputs).items()}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_version(task: Task, path: Path) -> LoadedModel:
    """Loads and checks one version; raises ``ValueError`` with the reason if it is unusable."""
    signatures, metadata = export.load_signatures(path)
    if metadata.get("task") != task.name:
        raise ValueError(f"metadata.json says task {metadata.get('task')!r}, not {task.name!r}")
    default = signatures.get(DEFAULT_SIGNATURE)
    if default is None:
        raise ValueError(f"no {DEFAULT_SIGNATURE} signature (has {sorted(signatures)})")
    inputs = sorted(default.structured_input_signature[1])
    if inputs != sorted(task.text_features):
        raise ValueError(f"signature inputs {inputs} are not the task's fields {list(task.text_features)}")
    expected = {"score"} if task.is_regression else {"probabilities", "label_id"}
    if not expected <= set(default.structured_outputs):
        raise ValueError(f"signature outputs {sorted(default.structured_outputs)} lack {sorted(expected)}")
    model = LoadedModel(task, int(path.name), path, metadata, signatures, time.time())
    model.predict({name: ["warm-up"] for name in task.text_features})  # fails here, not on a client
    return model


def _state(version: int, state: str, error_code: str = "OK", message: str = "") -> dict:
    return {"version": str(version), "state": state, "status": {"error_code": error_code, "error_message": message}}


class ModelRegistry:
    """Thread-safe map task -> served versions, refreshed by ``refresh`` / a watcher thread.

    ``config_for(task_name)`` gives a task's ``ModelConfig`` (policy and labels), or None
    for a task this server must not serve (a config file that does not name it).
    """

    def __init__(self, model_dir, config_for=lambda name: DEFAULT_CONFIG):
        self.model_dir = Path(model_dir)
        self.config_for = config_for
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._refused: dict[tuple[str, int], str] = {}
        self._unloaded: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # --- loading -------------------------------------------------------------------------
    def refresh(self) -> list[str]:
        """Loads the versions each task's policy wants and unloads the others; a line per change or refusal."""
        changes = []
        root = self.model_dir / "models"
        for task in TASKS.values():
            config = self.config_for(task.name)
            task_root = root / task.name
            if task.model_task or config is None or not task_root.is_dir() or not _inside(task_root, self.model_dir):
                continue  # AX is answered by the MNLI model
            wanted = self._load_wanted(task, task_root, config, changes)
            self._unload_unwanted(task, wanted, changes)
        return changes

    def _load_wanted(self, task: Task, task_root: Path, config, changes: list) -> list[int]:
        while True:
            usable = [v for v in export.versions(task_root) if (task.name, v) not in self._refused]
            wanted = config.policy.select(usable)
            served = self._models.get(task.name, {})
            missing = [v for v in reversed(wanted) if v not in served]
            if not missing:
                return wanted
            version = missing[0]
            path = task_root / str(version)
            try:
                if not _inside(path, self.model_dir):
                    raise ValueError("resolves outside the model folder (symlink)")
                loaded = load_version(task, path)
            except Exception as error:  # noqa: BLE001 - any failure refuses the version
                reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
                self._refused[(task.name, version)] = reason
                keeping = ", ".join(str(v) for v in sorted(served)) or "no model"
                changes.append(f"{task.name}: refused version {version} ({reason}); keeping "
                               f"{'version ' + keeping if served else keeping}")
                log.warning(changes[-1])
                continue
            with self._lock:
                self._models.setdefault(task.name, {})[version] = loaded
            self._unloaded.discard((task.name, version))
            changes.append(f"{task.name}: serving version {version} from {path}")
            log.info(changes[-1])

    def _unload_unwanted(self, task: Task, wanted: list[int], changes: list) -> None:
        with self._lock:
            served = self._models.get(task.name, {})
            for version in [v for v in served if v not in wanted]:
                del served[version]
                self._unloaded.add((task.name, version))
                changes.append(f"{task.name}: unloaded version {version} (not in the version policy)")
                log.info(changes[-1])

    # --- lookups -------------------------------------------------------------------------
    def get(self, task_name: str) -> LoadedModel | None:
        """The newest served version of the model that answers ``task_name``, or None."""
        served = self._served(task_name)
        return served[max(served)] if served else None

    def resolve(self, task_name: str, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The version a request asks for (TF Serving's messages and statuses when there is none)."""
        model_name = TASKS[task_name].predicted_by
        served = self._served(task_name)
        if label is not None:
            config = self.config_for(model_name) or DEFAULT_CONFIG
            if label not in config.labels:
                raise ApiError(f"Unrecognized servable version label: {label}", code="unknown_label")
            version = config.labels[label]
        if version is None:
            if not served:
                raise NotFound(f"Servable not found for request: Latest({task_name})", code="model_not_loaded")
            return served[max(served)]
        if version not in served:
            raise NotFound(f"Servable not found for request: Specific({task_name}, {version})",
                           code="version_not_loaded")
        return served[version]

    def status(self, task_name: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """TF Serving's ``model_version_status``: served, refused and unloaded versions, newest first."""
        model_name = TASKS[task_name].predicted_by
        if label is not None:
            version = self.resolve(task_name, label=label).version
        rows = {v: _state(v, "AVAILABLE") for v in self._served(task_name)}
        rows.update({v: _state(v, "END") for (name, v) in self._unloaded if name == model_name and v not in rows})
        rows.update({v: _state(v, "END", "UNKNOWN", reason)
                     for (name, v), reason in self._refused.items() if name == model_name})
        if version is not None:
            if version not in rows:
                raise NotFound(f"Could not find version {version} of model {task_name}", code="version_not_loaded")
            return [rows[version]]
        if not rows:
            raise NotFound(f"Could not find any versions of model {task_name}", code="model_not_loaded")
        return [rows[v] for v in sorted(rows, reverse=True)]

    def versions(self, task_name: str) -> set[int]:
        """The versions served for ``task_name`` now."""
        return set(self._served(task_name))

    def _served(self, task_name: str) -> dict[int, LoadedModel]:
        with self._lock:
            return dict(self._models.get(TASKS[task_name].predicted_by, {}))

    def loaded(self) -> dict[str, LoadedModel]:
        """Task -> newest served version, for every task with one."""
        with self._lock:
            return {name: served[max(served)] for name, served in self._models.items() if served}

    def refused(self) -> dict[str, str]:
        return {f"{task}/{version}": reason for (task, version), reason in self._refused.items()}

    # --- watching ------------------------------------------------------------------------
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
