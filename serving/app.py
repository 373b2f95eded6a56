"""``create_app``: the Flask application factory of the glue-tf service.

Configuration comes from ``Settings`` (environment variables). Models are
loaded when the app is created, i.e. in each gunicorn worker after the fork
(never ``preload_app``: TensorFlow's thread pools do not survive a fork).
Every error a client can cause is answered as ``{"error": {"code", "message"}}``
with a 4xx status; a bug answers a JSON 500 and the worker lives on.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import sys
import threading
import time
import uuid

import numpy as np
from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from glue_tf.tasks import GLUE_TASKS, HUMAN_GLUE_SCORE, TASKS, Task
from serving import schemas, scoring
from serving.batching import Batcher
from serving.errors import ApiError, ModelNotLoaded, NotFound, Overloaded
from serving.jobs import JobRunner, JobStore
from serving.models import ModelRegistry
from serving.settings import Settings
from serving.telemetry import Telemetry

log = logging.getLogger("glue_tf.serving")
request_log = logging.getLogger("glue_tf.requests")
# A client's X-Request-ID is echoed only if it is a sane token (no log or header injection).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def _setup_request_log(enabled: bool) -> None:
    """One JSON object per line on stderr, nothing else on the line (log shippers parse it as is)."""
    request_log.disabled = not enabled
    request_log.propagate = False
    if not request_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_log.addHandler(handler)
        request_log.setLevel(logging.INFO)


class Service:
    """Per-worker state: models, batchers, jobs and metrics."""

    def __init__(self, settings: Settings):
        self.settings = settings
        os.makedirs(settings.state_dir, exist_ok=True)
        self.registry = ModelRegistry(settings.model_dir)
        for line in self.registry.refresh():
            log.info(line)
        self.registry.start_watching(settings.reload_interval)
        self.telemetry = Telemetry(settings.state_dir)
        self.jobs = JobStore(os.path.join(settings.state_dir, "jobs.sqlite3"))
        self.runner = JobRunner(self.jobs, self._run_job, settings.max_concurrent_jobs, settings.job_stale_seconds)
        self._batchers: dict[str, Batcher] = {}
        self._lock = threading.Lock()

    def model_for(self, task: Task):
        model = self.registry.get(task.name)
        if model is None:
            raise ModelNotLoaded(f"no model is loaded for {task.name}; train and export it into "
                              f"{self.settings.model_dir}/models/{task.predicted_by}/")
        return model

    def predict(self, task: Task, columns: dict) -> dict:
        """Model outputs for ``columns``, through the task's batching queue when batching is on."""
        self.model_for(task)  # 404 before queueing when nothing is loaded
        if not self.settings.batching:
            return self._call_model(task, columns)
        with self._lock:
            batcher = self._batchers.get(task.predicted_by)
            if batcher is None:
                batcher = Batcher(
                    lambda cols, t=task: self._call_model(t, cols),
                    self.settings.max_batch_size, self.settings.batch_timeout_ms, self.settings.max_queue,
                    on_batch=self.telemetry.observe_batch, name=f"batcher-{task.predicted_by}",
                )
                self._batchers[task.predicted_by] = batcher
        return batcher.submit(columns)

    def _call_model(self, task: Task, columns: dict) -> dict:
        model = self.model_for(task)
        if not self.settings.batching:
            self.telemetry.observe_batch(len(next(iter(columns.values()))))
        # The MNLI model answers AX: the fields are the same, only the task differs.
        return model.predict(columns)

    def predict_chunked(self, task: Task, columns: dict, on_progress=None) -> dict:
        """Large inputs (scoring, jobs) in chunks of the batch size, reporting progress."""
        size = len(next(iter(columns.values())))
        step = self.settings.max_batch_size
        pieces = []
        for start in range(0, size, step):
            chunk = {name: values[start : start + step] for name, values in columns.items()}
            pieces.append(self._call_model(task, chunk))
            if on_progress:
                on_progress(min(start + step, size))
        return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}

    def _run_job(self, job: dict, beat) -> dict:
        request_body = job["request"]
        done = 0

        def progress_for(offset):
            return lambda count: beat(offset + count)

        limits = (self.settings.max_job_instances, self.settings.max_text_chars)
        if "tasks" in request_body:
            parsed = scoring.parse_multi(request_body, *limits)
            results = {}
            for name, task_parsed in parsed.items():
                task = TASKS[name]
                results[name] = scoring.score_parsed(
                    task, task_parsed, lambda cols, t=task, o=done: self.predict_chunked(t, cols, progress_for(o)))
                done += sum(len(labels) for _, labels in task_parsed.values())
            return scoring.summarize(results)
        task = schemas.task_or_404(request_body["task"])
        parsed = scoring.parse_task_body(task, _without_task(request_body), *limits)
        return scoring.score_parsed(task, parsed, lambda cols: self.predict_chunked(task, cols, progress_for(0)))


def _without_task(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "task"}


def _format_predictions(task: Task, outputs: dict) -> list[dict]:
    if task.is_regression:
        return [{"score": float(score)} for score in outputs["score"]]
    rows = []
    for label_id, probabilities in zip(outputs["label_id"], outputs["probabilities"]):
        rows.append({
            "label": task.label_names[int(label_id)],
            "label_id": int(label_id),
            "probabilities": {name: float(p) for name, p in zip(task.label_names, probabilities)},
        })
    return rows


def _json_body() -> object:
    if not request.is_json:
        raise ApiError(f"send JSON with Content-Type: application/json (got {request.mimetype or 'none'!r})",
                       status=415, code="unsupported_media_type")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("the request body is not valid JSON", code="invalid_json")
    return body


def _object_body(*allowed: str) -> dict:
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise ApiError(f"unexpected keys {sorted(unknown)}; this endpoint takes {list(allowed)}")
    return body


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    service = Service(settings)
    app.extensions["glue_tf"] = service

    def require_token():
        if not settings.api_token:
            return
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(token.encode(), settings.api_token.encode()):
            raise ApiError("this endpoint needs 'Authorization: Bearer <GLUE_TF_API_TOKEN>'",
                           status=401, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})

    _setup_request_log(settings.request_log)

    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def record(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        latency = time.perf_counter() - g.get("started", time.perf_counter())
        service.telemetry.observe_request(endpoint, request.method, response.status_code, latency)
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        request_log.info(json.dumps({
            "ts": round(time.time(), 3), "request_id": request_id, "method": request.method, "path": request.path,
            "endpoint": endpoint, "task": (request.view_args or {}).get("task_name"),
            "instances": g.get("instances"), "status": response.status_code,
            "latency_ms": round(1000 * latency, 2), "pid": os.getpid(),
        }))
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body()), error.status, error.headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(error.code, "http_error")
        message = error.description
        if error.code == 413:
            message = f"the request body is over the limit of {settings.max_body_bytes} bytes"
        return jsonify({"error": {"code": code, "message": message}}), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify({"error": {"code": "internal", "message": "internal error; see the server log"}}), 500

    # --- predictions -------------------------------------------------------------------
    @app.post("/predict/<task_name>")
    def predict(task_name):
        task = schemas.task_or_404(task_name)
        body = _object_body("instances")
        if "instances" not in body:
            raise ApiError("missing 'instances': a list of objects with fields " + str(list(task.text_features)))
        columns = schemas.instances_to_columns(task, body["instances"], settings.max_instances, settings.max_text_chars)
        g.instances = len(body["instances"])
        outputs = service.predict(task, columns)
        model = service.model_for(task)
        return jsonify({"task": task.name, "model_version": model.version,
                        "predictions": _format_predictions(task, outputs)})

    @app.post("/v1/models/<task_name>:predict")
    def tf_serving_predict(task_name):
        task = schemas.task_or_404(task_name)
        body = _object_body("instances", "inputs", "signature_name")
        if body.get("signature_name", "serving_default") != "serving_default":
            raise ApiError("only signature_name 'serving_default' is served")
        if ("instances" in body) == ("inputs" in body):
            raise ApiError("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
        if "instances" in body:
            columns = schemas.instances_to_columns(task, body["instances"], settings.max_instances,
                                                   settings.max_text_chars)
        else:
            columns = schemas.columnar_to_columns(task, body["inputs"], settings.max_instances,
                                                  settings.max_text_chars)
        g.instances = len(next(iter(columns.values())))
        outputs = service.predict(task, columns)
        as_lists = {name: np.asarray(value).tolist() for name, value in outputs.items()}
        if "inputs" in body:
            return jsonify({"outputs": as_lists})
        size = len(next(iter(as_lists.values())))
        return jsonify({"predictions": [{name: values[i] for name, values in as_lists.items()} for i in range(size)]})

    @app.get("/v1/models/<task_name>")
    def tf_serving_status(task_name):
        task = schemas.task_or_404(task_name)
        model = service.registry.get(task.name)
        if model is None:
            raise NotFound(f"no version of {task.name} is loaded")
        return jsonify({"model_version_status": [
            {"version": str(model.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]})

    # --- scoring -------------------------------------------------------------------------
    @app.post("/score/<task_name>")
    def score_task(task_name):
        require_token()
        task = schemas.task_or_404(task_name)
        body = _object_body("instances", "labels", "splits")
        parsed = scoring.parse_task_body(task, body, settings.max_instances, settings.max_text_chars)
        service.model_for(task)
        return jsonify(scoring.score_parsed(task, parsed, lambda cols: service.predict_chunked(task, cols)))

    @app.post("/score")
    def score_many():
        require_token()
        body = _object_body("tasks")
        parsed = scoring.parse_multi(body, settings.max_instances, settings.max_text_chars)
        results = {}
        for name, task_parsed in parsed.items():
            task = TASKS[name]
            service.model_for(task)
            results[name] = scoring.score_parsed(task, task_parsed, lambda cols, t=task: service.predict_chunked(t, cols))
        return jsonify(scoring.summarize(results))

    @app.post("/jobs")
    def create_job():
        require_token()
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError("the request body must be a JSON object")
        limits = (settings.max_job_instances, settings.max_text_chars)
        if "tasks" in body:
            if set(body) != {"tasks"}:
                raise ApiError("a multi-task job takes only 'tasks'")
            parsed = scoring.parse_multi(body, *limits)
            for name in parsed:
                service.model_for(TASKS[name])
        else:
            unknown = set(body) - {"task", "instances", "labels", "splits"}
            if unknown or "task" not in body:
                raise ApiError("a job takes 'task' with 'instances' and 'labels' (or 'splits'), or 'tasks'")
            if not isinstance(body["task"], str):
                raise ApiError("'task' must be a task name")
            task = schemas.task_or_404(body["task"])
            parsed = {task.name: scoring.parse_task_body(task, _without_task(body), *limits)}
            service.model_for(task)
        if service.jobs.active() >= settings.max_concurrent_jobs * 4:
            raise Overloaded("too many scoring jobs are queued or running; retry later", headers={"Retry-After": "10"})
        job_id = service.jobs.create(body, scoring.total_instances(parsed))
        service.runner.submit(job_id)
        return jsonify({"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"}), 202, {"Location": f"/jobs/{job_id}"}

    @app.get("/jobs/<job_id>")
    def get_job(job_id):
        require_token()
        if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
            raise NotFound(f"no job {job_id!r}")
        job = service.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return jsonify({
            "id": job["id"], "status": job["status"],
            "progress": {"done": job["done"], "total": job["total"]},
            "result": job["result"], "error": job["error"],
            "created_at": job["created_at"], "updated_at": job["updated_at"], "attempts": job["attempts"],
        })

    # --- information ---------------------------------------------------------------------
    def task_rows():
        rows = {}
        for name, task in TASKS.items():
            model = service.registry.get(name)
            if model is None:
                continue
            rows[name] = {
                "display_name": task.display_name,
                "version": model.version,
                "served_by": task.predicted_by,
                "fields": list(task.text_features),
                "label_names": list(task.label_names),
                "regression": task.is_regression,
                "dev_metrics": {k: 100.0 * v for k, v in (model.metadata.get("dev_metrics") or {}).items()}
                if task.model_task is None else None,
                "human_baseline": dict(task.human_baseline),
                "backbone": (model.metadata.get("backbone") or {}).get("spec"),
                "path": str(model.path),
            }
        return rows

    @app.get("/v1/tasks")
    def list_tasks():
        return jsonify({"tasks": task_rows(), "refused_versions": service.registry.refused()})

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        loaded = service.registry.loaded()
        body = {"ready": bool(loaded), "models": {name: m.version for name, m in loaded.items()}}
        if not loaded:
            body["reason"] = f"no complete model export under {settings.model_dir}/models/"
            return jsonify(body), 503
        return jsonify(body)

    @app.get("/metrics")
    def metrics_endpoint():
        return Response(service.telemetry.render(), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi():
        return jsonify(schemas.openapi(settings))

    @app.get("/")
    def index():
        from glue_tf import metrics as glue_metrics

        rows = task_rows()
        components = {}
        for name, row in rows.items():
            dev = row["dev_metrics"]
            if dev and name in GLUE_TASKS:
                components[name] = dev
        summary = glue_metrics.summarize(components)
        table = []
        for name in TASKS:
            task = TASKS[name]
            row = rows.get(name)
            human = glue_metrics.task_score(task, task.human_baseline) if task.human_baseline else None
            ours = summary["task_scores"].get(name)
            table.append({"name": name, "display": task.display_name, "row": row, "score": ours, "human": human})
        return render_template("index.html", table=table, summary=glue_metrics.describe(summary),
                               human_glue=HUMAN_GLUE_SCORE, tasks=TASKS, rows=rows)

    return app
