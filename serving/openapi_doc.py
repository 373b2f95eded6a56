"""The OpenAPI 3.0 route table. Request bodies come from ``serving.schemas`` (the ones requests are checked
against); this module only says which route takes which body and answers what."""

from __future__ import annotations

from glue_tf.tasks import TASKS
from serving.jobs import STATES

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
_TF_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "content": _json(schema or {"type": "object"})}


def _errors(codes, tf_serving: bool = False) -> dict:
    texts = {400: "invalid request", 401: "missing or wrong bearer token", 404: "unknown task, version, label or job, "
             "or no model loaded", 409: "the job has already finished", 413: "over a limit", 429: "queue full", 503: "a model still warming up, or the job store unavailable (retry after Retry-After seconds)"}
    ref = {"$ref": "#/components/schemas/TfServingError" if tf_serving else "#/components/schemas/Error"}
    return {str(code): {"description": texts[code], "content": _json(ref)} for code in codes}


def _path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _tf_serving_paths(bodies: dict, task_param: dict) -> dict:
    """``/v1/models/{task}`` with no version, ``/versions/{version}`` or ``/labels/{label}``."""
    pins = {"": [], "/versions/{version}": [_path_param("version", {"type": "integer", "minimum": 1})],
            "/labels/{label}": [_path_param("label", {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"})]}
    status = {"type": "object", "required": ["model_version_status"],
              "properties": {"model_version_status": {"type": "array", "items": {"type": "object"}}}}
    paths = {}
    for suffix, extra in pins.items():
        params = [task_param, *extra]
        base = f"/v1/models/{{task}}{suffix}"
        paths[base] = {"get": {"summary": "TF Serving model status", "parameters": params,
                               "responses": {"200": _ok("model_version_status", status),
                                             **_errors((400, 404), tf_serving=True)}}}
        paths[f"{base}/metadata"] = {"get": {
            "summary": "TF Serving model metadata: signature definitions", "parameters": params,
            "responses": {"200": _ok("model_spec and metadata.signature_def"), **_errors((400, 404), True)}}}
        for verb, body, summary in (("predict", "tf_predict", "row 'instances' or columnar 'inputs'"),
                                    ("classify", "tf_examples", "label/score pairs per example"),
                                    ("regress", "tf_examples", "one score per example (STS-B)")):
            paths[f"{base}:{verb}"] = {"post": {
                "summary": f"TF Serving {verb}: {summary}", "parameters": params,
                "requestBody": {"required": True, "content": _json(bodies[body])},
                "responses": {"200": _ok(f"TF Serving {verb} result"),
                              **_errors((400, 404, 413, 429, 503), tf_serving=True)}}}
    return paths


def document(settings, bodies: dict) -> dict:
    task_param = _path_param("task", {"type": "string", "enum": list(TASKS)})
    secured = {"security": [{"bearer": []}]} if settings.api_token else {}
    token = (401,) if settings.api_token else ()
    guarded = (400, *token, 404, 413, 503)
    job_param = _path_param("job_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
    body = lambda name: {"required": True, "content": _json(bodies[name])}  # noqa: E731
    predictions = {"type": "object", "required": ["predictions"],
                   "properties": {"predictions": {"type": "array", "items": {"type": "object"}}}}
    text = lambda mime: {"description": mime, "content": {mime: {"schema": {"type": "string"}}}}  # noqa: E731
    paths = {
        "/predict/{task}": {"post": {
            "summary": "Labels and probabilities (STS-B: scores) for instances, in input order",
            "parameters": [task_param], "requestBody": body("predict"),
            "responses": {"200": _ok("predictions", predictions), **_errors((400, 404, 413, 429, 503))}}},
        **_tf_serving_paths(bodies, task_param),
        "/score/{task}": {"post": {
            "summary": "Official metrics on labelled instances", "parameters": [task_param], **secured,
            "requestBody": body("score"), "responses": {"200": _ok("metrics and task score"), **_errors(guarded)}}},
        "/score": {"post": {
            "summary": "Several tasks at once; the GLUE score only with all nine", **secured,
            "requestBody": body("score_many"),
            "responses": {"200": _ok("per-task metrics, mean, GLUE score"), **_errors(guarded)}}},
        "/jobs": {
            "post": {"summary": "Score a large labelled set in the background", **secured,
                     "requestBody": body("job"),
                     "responses": {"202": _ok("the job id"), **_errors((*guarded, 429))}},
            "get": {"summary": "Jobs, newest first, optionally in one state", **secured, "parameters": [
                {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": list(STATES)}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                    "responses": {"200": _ok("jobs"), **_errors((*token, 400, 503))}}},
        "/jobs/{job_id}": {
            "get": {"summary": "Job progress and result", **secured, "parameters": [job_param],
                    "responses": {"200": _ok("status, progress, result"), **_errors((*token, 404, 503))}},
            "delete": {"summary": "Cancel a queued or running job", **secured, "parameters": [job_param],
                       "responses": {"200": _ok("the cancelled job"), **_errors((*token, 404, 409, 503))}}},
        "/v1/tasks": {"get": {"summary": "Loaded tasks, labels, fields, versions, dev metrics",
                              "responses": {"200": _ok("tasks")}}},
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": _ok("ok")}}},
        "/readyz": {"get": {"summary": "Models loaded", "responses": {"200": _ok("ready"), "503": _ok("not ready")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": text("text/plain")}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI 3")}}},
        "/": {"get": {"summary": "Scoreboard page", "responses": {"200": text("text/html")}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "glue-tf serving", "version": "1",
                 "description": "GLUE predictions and scoring, and TF Serving's REST API."},
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR, "TfServingError": _TF_ERROR},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
