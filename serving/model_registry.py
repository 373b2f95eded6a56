"""The models the service answers with: discovery, version policy, labels and hot reload of export versions.

Which versions of a task are served follows TF Serving's version policy
(``latest`` N, ``all`` or ``specific`` versions; latest 1 by default) over the
complete versions under ``<model_dir>/models/<task>/``; labels such as
``stable`` or ``canary`` name versions. A watcher thread rescans the folder and
loads each newly wanted version; only then are versions the policy no longer
wants unloaded, so a task never drops to no model because a newer version failed.

Each version runs the signature ``glue_tf.exports.choice`` picks for this
machine and ``GLUE_TF_PRECISION`` (a request may name another). Before it
serves, it replays TF Serving's warm-up file
(``assets.extra/tf_serving_warmup_requests``, one request per compiled grid
shape) against that signature and ``serving_default`` once, so no request pays
an XLA compile; an export without the file answers one warm-up request. Status
shows a version LOADING meanwhile, then AVAILABLE. A request in flight
keeps the version it started with. A version that is incomplete (no
``saved_model.pb`` or ``metadata.json``: never renamed into place), corrupt,
for another task, or reached through a link out of the model folder is refused
with a log line, and shows END with the reason in its status. As in TF Serving, a
refused version is tried again on a later scan once its files have changed (a copy
that was not finished), waiting longer after each failure (``RETRY_BACKOFF_S``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np

from glue_tf.exports import choice, saved_model, store
from glue_tf.exports import predictor as export_predictor
from glue_tf.exports import signatures as glue_signatures
from glue_tf.precision import Machine
from glue_tf.tasks import TASKS, Task
from serving import allocator
from serving.errors import ApiError, NotFound, Unavailable
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
    chosen: str = DEFAULT_SIGNATURE  # what a request that names no signature runs
    reason: str = ""  # why, in words (glue_tf.exports.choice.choose)

    @functools.cached_property
    def signature_defs(self) -> dict:
        """The SignatureDefs as TF Serving's metadata API renders them (read once, on first ask)."""
        return saved_model.signature_def_map(self.path)

    def signature(self, name: str | None):
        signature = self.signatures.get(name or self.chosen)
        if signature is None:
            raise ApiError(f'Serving signature name: "{name}" not found in signature def; this export has '
                           f"{sorted(self.signatures)}", code="unknown_signature")
        return signature

    def predict(self, columns: dict[str, list[str]], signature: str | None = None) -> dict[str, np.ndarray]:
        """Runs a signature (the chosen one unless named) on text columns named as the task's fields."""
        import tensorflow as tf

        function = self.signature(signature)
        inputs = {name: tf.constant(columns[name], dtype=tf.string) for name in self.task.text_features}
        return {name: value.numpy() for name, value in function(**inputs).items()}

    def predict_sorted(self, columns: dict[str, list[str]], rows: int, on_progress=None) -> dict[str, np.ndarray]:
        """The chosen signature over many rows (scoring, jobs): tokenized once, in length order, ``rows`` per
        call (:func:`glue_tf.exports.predictor.sorted_outputs`), each call's width one of the export's steps, as
        ``/predict``'s are; ``on_progress(done)`` after each call."""
        fields = {name: columns[name] for name in self.task.text_features}
        return export_predictor.sorted_outputs(self.signatures, self.chosen, fields, rows, on_progress,
                                               step_widths=True)


RETRY_BACKOFF_S = (1.0, 60.0)  # the first wait before a refused version is tried again, and the longest


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a version was refused, and when it may be tried again: TF Serving retries a failed load, and
    operators copy versions in steps (``saved_model.pb`` first, ``variables/`` later)."""

    reason: str
    files: tuple  # the folder's files when it was refused: a retry waits for them to change
    failures: int
    retry_after: float  # time.monotonic()

    @classmethod
    def after(cls, previous: "Refusal | None", reason: str, files: tuple) -> "Refusal":
        failures = (previous.failures if previous else 0) + 1
        first, longest = RETRY_BACKOFF_S
        return cls(reason, files, failures, time.monotonic() + min(longest, first * 2 ** (failures - 1)))


def _fingerprint(path: Path) -> tuple:
    """``(relative path, size, mtime)`` of every file under a version folder: what a copy in progress changes."""
    found = []
    for file in sorted(path.rglob("*")):
        try:
            info = file.stat()
        except OSError:
            continue
        if file.is_file():
            found.append((str(file.relative_to(path)), info.st_size, info.st_mtime_ns))
    return tuple(found)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_version(task: Task, path: Path, machine: Machine, precision: str = "auto") -> LoadedModel:
    """Loads, checks and warms up one version; raises ``ValueError`` with the reason if it is unusable.

    ``machine`` (where it runs) and ``precision`` (``GLUE_TF_PRECISION``): for the choice of the signature it runs.
    """
    signatures, metadata = saved_model.load_signatures(path)
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
    chosen, reason = choice.choose(metadata, signatures, machine, precision, setting="GLUE_TF_PRECISION")
    model = LoadedModel(task, int(path.name), path, metadata, signatures, time.time(), chosen, reason)
    warm_up(model)  # fails here, not on a client
    allocator.trim()  # the warm-up's buffers, freed, leave the worker's resident set
    model.loaded_at = time.time()
    return model


def warm_up(model: LoadedModel) -> int:
    """Replays the export's warm-up requests on the chosen signature, and one on ``serving_default``.

    The requests cover every shape the compiled signature runs, so it compiles
    them all here. Without a warm-up file (an older export), one request.
    Returns the number of requests replayed.
    """
    requests = glue_signatures.warmup_requests(model.path)
    if not requests:
        model.predict({name: ["warm-up"] for name in model.task.text_features})
        return 1
    for columns in requests:
        model.predict(columns)
    if model.chosen != DEFAULT_SIGNATURE:
        model.predict(requests[0], DEFAULT_SIGNATURE)
    return len(requests) + (model.chosen != DEFAULT_SIGNATURE)


def _state(version: int, state: str, error_code: str = "OK", message: str = "") -> dict:
    return {"version": str(version), "state": state, "status": {"error_code": error_code, "error_message": message}}


class ModelRegistry:
    """Thread-safe map task -> served versions, refreshed by ``refresh`` / a watcher thread.

    ``config_for(task_name)`` gives a task's ``ModelConfig`` (policy and labels), or None
    for a task this server must not serve (a config file that does not name it);
    ``precision`` is ``GLUE_TF_PRECISION``. ``load_in_background`` loads the versions
    wanted at start in a thread (warm-up compiles take longer than gunicorn lets a
    worker boot); ``initial_load_done`` tells when it has finished.
    """

    def __init__(self, model_dir, machine: Machine, config_for=lambda name: DEFAULT_CONFIG, precision: str = "auto"):
        self.model_dir = Path(model_dir)
        self.config_for = config_for
        self.machine = machine
        self.precision = precision
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._refused: dict[tuple[str, int], Refusal] = {}
        self._unloaded: set[tuple[str, int]] = set()
        self._loading: set[tuple[str, int]] = set()  # wanted, not yet served: being loaded and warmed up
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.initial_load_done = threading.Event()

    # --- loading -------------------------------------------------------------------------
    def load_in_background(self, then=None) -> threading.Thread:
        """Loads every wanted version in a thread (:meth:`refresh`), then calls ``then()`` and sets
        ``initial_load_done`` (in that order: whoever waits sees what ``then`` started). The versions it will
        load count as LOADING from now on."""
        with self._lock:
            self._loading.update(self._pending())

        def load():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the worker serves what loaded; the watcher tries again
                log.exception("loading the models failed")
            finally:
                with self._lock:
                    self._loading.clear()
                try:
                    if then:
                        then()
                finally:
                    self.initial_load_done.set()

        thread = threading.Thread(target=load, name="model-loader", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> list[str]:
        """Loads the versions each task's policy wants and unloads the others; a line per change or refusal."""
        changes = []
        for task, task_root, config in self._tasks():
            wanted = self._load_wanted(task, task_root, config, changes)
            self._unload_unwanted(task, wanted, changes)
        return changes

    def _tasks(self):
        """``(task, its folder, its config)`` of every task with a model folder this server serves."""
        root = store.models_dir(self.model_dir)
        for task in TASKS.values():
            config = self.config_for(task.name)
            task_root = root / task.name
            if task.model_task or config is None or not task_root.is_dir() or not _inside(task_root, self.model_dir):
                continue  # AX is answered by the MNLI model
            yield task, task_root, config

    def _missing(self, task: Task, task_root: Path, config) -> tuple[list[int], list[int]]:
        """``(wanted, missing)``: the versions the policy wants, and those of them not served yet (newest first)."""
        usable = [v for v in store.versions(task_root) if self._may_try(task.name, v, task_root / str(v))]
        wanted = config.policy.select(usable)
        served = self._models.get(task.name, {})
        return wanted, [v for v in reversed(wanted) if v not in served]

    def _pending(self) -> set[tuple[str, int]]:
        return {(task.name, v) for task, root, config in self._tasks() for v in self._missing(task, root, config)[1]}

    def _load_wanted(self, task: Task, task_root: Path, config, changes: list) -> list[int]:
        while True:
            wanted, missing = self._missing(task, task_root, config)
            if not missing:
                return wanted
            version = missing[0]
            path = task_root / str(version)
            served = self._models.get(task.name, {})
            with self._lock:
                self._loading.add((task.name, version))
            files = _fingerprint(path)  # before loading: files that change meanwhile are tried again
            try:
                if not _inside(path, self.model_dir):
                    raise ValueError("resolves outside the model folder (symlink)")
                loaded = load_version(task, path, self.machine, self.precision)
            except Exception as error:  # noqa: BLE001 - any failure refuses the version
                reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
                with self._lock:
                    self._refused[(task.name, version)] = Refusal.after(self._refused.get((task.name, version)),
                                                                        reason, files)
                    self._loading.discard((task.name, version))
                keeping = ", ".join(str(v) for v in sorted(served)) or "no model"
                changes.append(f"{task.name}: refused version {version} ({reason}); keeping "
                               f"{'version ' + keeping if served else keeping}")
                log.warning(changes[-1])
                continue
            with self._lock:
                self._models.setdefault(task.name, {})[version] = loaded
                self._loading.discard((task.name, version))
                self._refused.pop((task.name, version), None)
            self._unloaded.discard((task.name, version))
            changes.append(f"{task.name}: serving version {version} from {path} with {loaded.reason}")
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
                self._refuse_while_loading(task_name, self.loading(task_name))
                raise NotFound(f"Servable not found for request: Latest({task_name})", code="model_not_loaded")
            return served[max(served)]
        if version not in served:
            self._refuse_while_loading(task_name, [version] if version in self.loading(task_name) else [])
            raise NotFound(f"Servable not found for request: Specific({task_name}, {version})",
                           code="version_not_loaded")
        return served[version]

    @staticmethod
    def _refuse_while_loading(task_name: str, loading: list[int]) -> None:
        """A 503 (TF Serving's UNAVAILABLE) for a request that needs a version still warming up."""
        if loading:
            names = ", ".join(str(v) for v in loading)
            raise Unavailable(f"Servable {task_name} version {names} is loading (warming up); retry shortly",
                              code="model_loading", headers={"Retry-After": "5"})

    def status(self, task_name: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """TF Serving's ``model_version_status``: loading, served, refused and unloaded versions, newest first."""
        model_name = TASKS[task_name].predicted_by
        if label is not None:
            version = self.resolve(task_name, label=label).version
        rows = {v: _state(v, "AVAILABLE") for v in self._served(task_name)}
        rows.update({v: _state(v, "LOADING") for v in self.loading(task_name) if v not in rows})
        rows.update({v: _state(v, "END") for (name, v) in self._unloaded if name == model_name and v not in rows})
        rows.update({v: _state(v, "END", "UNKNOWN", reason)
                     for v, reason in self.refused_reasons(model_name).items() if v not in rows})
        if version is not None:
            if version not in rows:
                raise NotFound(f"Could not find version {version} of model {task_name}", code="version_not_loaded")
            return [rows[version]]
        if not rows:
            raise NotFound(f"Could not find any versions of model {task_name}", code="model_not_loaded")
        return [rows[v] for v in sorted(rows, reverse=True)]

    def loading(self, task_name: str | None = None) -> list[int] | list[tuple[str, int]]:
        """Versions loading now: of ``task_name``'s model (newest first), or ``(task, version)`` of every task."""
        with self._lock:
            loading = set(self._loading)
        if task_name is None:
            return sorted(loading)
        model_name = TASKS[task_name].predicted_by
        return sorted((v for name, v in loading if name == model_name), reverse=True)

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
        with self._lock:
            return {f"{task}/{version}": refusal.reason for (task, version), refusal in self._refused.items()}

    def refused_reasons(self, model_name: str) -> dict[int, str]:
        with self._lock:
            return {v: refusal.reason for (name, v), refusal in self._refused.items() if name == model_name}

    def _may_try(self, task_name: str, version: int, path: Path) -> bool:
        """A version not refused, or refused but changed on disk since, once its backoff has passed."""
        refusal = self._refused.get((task_name, version))  # one atomic read: callers may hold the lock
        if refusal is None:
            return True
        if time.monotonic() < refusal.retry_after or _fingerprint(path) == refusal.files:
            return False
        log.info("%s: trying version %d again: its files changed since it was refused", task_name, version)
        return True

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
