"""What every route of one worker shares: loaded models, their batching queues, scoring jobs, metrics.

Built once per gunicorn worker, after the fork (TensorFlow's thread pools do not
survive a fork), and kept in ``app.extensions["glue_tf"]``. The models load and
warm up in a background thread (``ModelRegistry.load_in_background``): a
worker's boot must not outlast gunicorn's timeout, and warm-up compiles a dozen
shapes per version. Until it is done, ``/readyz`` answers 503, predictions for a
task still loading 503 (``model_loading``), and no scoring job is claimed here;
the folder watcher starts after it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import numpy as np

from glue_tf import metrics
from glue_tf.exports import predictor as export_predictor
from glue_tf.precision import Machine
from glue_tf.tasks import TASKS, Task
from serving import labelled_scores, schemas
from serving.batching import Batcher
from serving.errors import ApiError, ModelNotLoaded, NotFound, Overloaded, Unavailable
from serving.jobs import Chunk, JobRunner, open_store
from serving.model_registry import LoadedModel, ModelRegistry
from serving.settings import Settings
from serving.telemetry import Telemetry

log = logging.getLogger("glue_tf.serving")


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.limits = schemas.Limits(settings.max_instances, settings.max_text_chars)
        self.job_limits = schemas.Limits(settings.max_job_instances, settings.max_text_chars)
        os.makedirs(settings.state_dir, exist_ok=True)
        self.telemetry = Telemetry(refresh_every=5.0)
        self.registry = ModelRegistry(settings.model_dir, Machine.detect(), settings.model_config_for,
                                      settings.precision)
        self.jobs = open_store(settings)
        self._job_requests: OrderedDict[str, tuple[dict, bool]] = OrderedDict()  # parsed, per job, a few
        self._batchers: dict[tuple, Batcher] = {}
        self._lock = threading.Lock()
        self.runner: JobRunner | None = None  # started once the models are loaded
        self.registry.load_in_background(then=self._models_loaded)

    def _models_loaded(self) -> None:
        settings = self.settings
        self.registry.start_watching(settings.reload_interval)
        self.runner = JobRunner(self.jobs, self._score_chunk, self._assemble_job, settings.max_concurrent_jobs,
                                settings.job_stale_seconds, settings.job_retention_seconds)

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """Blocks until the models wanted at start are loaded and warmed up (or refused); False on timeout."""
        return self.registry.initial_load_done.wait(timeout)

    # --- models ---------------------------------------------------------------------------
    def model(self, task: Task, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The version a request asks for (the newest by default)."""
        if version is None and label is None and self.registry.get(task.name) is None:
            loading = self.registry.loading(task.name)
            if loading:
                raise Unavailable(f"the {task.predicted_by} model is still loading (warming up version "
                                  f"{loading[0]}); retry shortly", code="model_loading", headers={"Retry-After": "5"})
            raise ModelNotLoaded(f"no model is loaded for {task.name}; train and export it into "
                                 f"{self.settings.model_dir}/models/{task.predicted_by}/")
        return self.registry.resolve(task.name, version, label)

    def predict(self, model: LoadedModel, columns: dict, signature: str | None = None) -> dict:
        """Model outputs for ``columns``, through the version's batching queue when batching is on."""
        model.signature(signature)  # an unknown signature is the request's error, before it queues
        if not self.settings.batching:
            return _input_errors_as_400(lambda: self._call(model, signature, columns))
        return _input_errors_as_400(lambda: self._batcher(model, signature).submit(columns))

    def predict_chunked(self, model: LoadedModel, columns: dict, on_progress=None) -> dict:
        """Large inputs (scoring, jobs): length-sorted calls of the chosen signature, reporting progress."""
        rows = export_predictor.rows_per_call(model.chosen, self.settings.max_batch_size)
        return _input_errors_as_400(lambda: model.predict_sorted(columns, rows, on_progress))

    def _call(self, model: LoadedModel, signature: str | None, columns: dict) -> dict:
        outputs = model.predict(columns, signature)
        if not self.settings.batching:
            self.telemetry.observe_batch(model.task.name, model.version, len(next(iter(columns.values()))))
        return outputs

    def _batcher(self, model: LoadedModel, signature: str | None) -> Batcher:
        key = (model.task.name, model.version, signature or "")
        with self._lock:
            batcher = self._batchers.get(key)
            if batcher is None:
                self._close_unserved_batchers()
                name, version = model.task.name, model.version
                batcher = Batcher(
                    lambda columns: model.predict(columns, signature),
                    self.settings.max_batch_size, self.settings.batch_timeout_ms, self.settings.max_queue,
                    on_batch=lambda size: self.telemetry.observe_batch(name, version, size),
                    on_queue=lambda delta: self.telemetry.queue_changed(name, version, delta),
                    name=f"batcher-{name}-{version}",
                )
                self._batchers[key] = batcher
        return batcher

    def _close_unserved_batchers(self) -> None:
        """Queues of versions the registry no longer serves end, so their models can be freed."""
        for key in list(self._batchers):
            task_name, version, _ = key
            if version not in self.registry.versions(task_name):
                self._batchers.pop(key).close()

    # --- scoring (requests and jobs alike) -------------------------------------------------
    def score(self, parsed: dict[str, dict], on_progress=None) -> dict[str, dict]:
        """``{task: {split: (columns, labels)}}`` -> each task's metrics; ``on_progress(done instances)``."""
        models = {name: self.model(TASKS[name]) for name in parsed}  # 404 before any work
        results, done = {}, 0
        for name, splits in parsed.items():
            task = TASKS[name]
            progress = (lambda count, offset=done: on_progress(offset + count)) if on_progress else None
            results[name] = labelled_scores.score_splits(
                task, splits, lambda columns: self.predict_chunked(models[name], columns, progress))
            done += sum(len(labels) for _, labels in splits.values())
        return results

    # --- jobs: split into chunks that any worker of any replica scores --------------------------
    def create_job(self, body) -> tuple[str, int]:
        """Checks a job body, then queues it; returns ``(job id, instances)``."""
        parsed, _ = labelled_scores.parse_job(body, self.job_limits)
        for name in parsed:
            self.model(TASKS[name])  # 404 now rather than a failed job later
        if self.jobs.active() >= self.settings.max_concurrent_jobs * 4:
            raise Overloaded("too many scoring jobs are queued or running; retry later", headers={"Retry-After": "10"})
        chunks = labelled_scores.plan_chunks(parsed, self.settings.max_batch_size * 4)
        job_id = self.jobs.create(body, chunks, self.settings.job_store_max_bytes)
        if self.runner is not None:  # else this worker's runner starts once its models are loaded
            self.runner.wake()
        return job_id, labelled_scores.total_instances(parsed)

    def _parsed_job(self, job_id: str) -> tuple[dict, bool]:
        with self._lock:
            if job_id in self._job_requests:
                return self._job_requests[job_id]
        job = self.jobs.get(job_id, with_request=True)
        if job is None or job["request"] is None:  # gone, or ended (cancelled) while a chunk was scored
            raise NotFound(f"job {job_id!r} has no request to score (it has ended)")
        parsed = labelled_scores.parse_job(job["request"], self.job_limits)
        with self._lock:
            self._job_requests[job_id] = parsed
            while len(self._job_requests) > 4:
                self._job_requests.popitem(last=False)
        return parsed

    def _score_chunk(self, job_id: str, chunk: Chunk, keep_alive) -> list:
        """One chunk's predictions (label ids or scores), renewing its lease between batches."""
        parsed, _ = self._parsed_job(job_id)
        task = TASKS[chunk.task]
        columns, _ = parsed[chunk.task][chunk.split]
        piece = {field: texts[chunk.start : chunk.stop] for field, texts in columns.items()}
        outputs = self.predict_chunked(self.model(task), piece, on_progress=lambda _: keep_alive())
        return metrics.predictions_from_outputs(task, outputs).tolist()

    def _assemble_job(self, job_id: str) -> dict:
        """The job's result from its chunks' predictions, as ``/score`` would give it."""
        parsed, many = self._parsed_job(job_id)
        predictions: dict[tuple[str, str], list] = {}
        for task, split, _, result in self.jobs.chunk_results(job_id):
            predictions.setdefault((task, split), []).extend(result)
        results = {name: labelled_scores.score_predictions(TASKS[name], {
            split: (labels, np.asarray(predictions[(name, split)])) for split, (_, labels) in splits.items()})
            for name, splits in parsed.items()}
        return labelled_scores.summarize(results) if many else next(iter(results.values()))


def _input_errors_as_400(call):
    """A request that fails the model on its own (the batcher keeps it apart) is the request's error."""
    import tensorflow as tf

    try:
        return call()
    except (tf.errors.InvalidArgumentError, UnicodeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ApiError(f"the model cannot take this input: {message[:300]}", code="invalid_input") from None
