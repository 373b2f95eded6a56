"""Request validation and the OpenAPI document, both from the task registry.

Every check raises an ``ApiError`` (4xx) saying what to fix; nothing a client
sends can reach the model unchecked.
"""

from __future__ import annotations

import math

from glue_tf.tasks import TASKS, Task
from serving.errors import ApiError, NotFound


def task_or_404(name: str) -> Task:
    task = TASKS.get(name)
    if task is None:
        raise NotFound(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return task


def _check_text(value, where: str, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise ApiError(f"{where}: field {field!r} must be a string, not {type(value).__name__}")
    if len(value) > max_chars:
        raise ApiError(
            f"{where}: field {field!r} has {len(value)} characters; the limit is {max_chars} "
            "(texts are truncated to the model's max sequence length anyway)",
            status=413, code="text_too_long",
        )
    return value


def instances_to_columns(task: Task, instances, max_instances: int, max_chars: int, key: str = "instances") -> dict:
    """Row-format instances -> ``{field: [texts]}``; a bare string is allowed for one-field tasks."""
    if not isinstance(instances, list):
        raise ApiError(f"{key!r} must be a list of objects with fields {list(task.text_features)}")
    if not instances:
        raise ApiError(f"{key!r} is empty; send at least one instance")
    if len(instances) > max_instances:
        raise ApiError(f"{key!r} has {len(instances)} instances; the limit per request is {max_instances}",
                       status=413, code="too_many_instances")
    fields = task.text_features
    columns = {field: [] for field in fields}
    for position, instance in enumerate(instances):
        where = f"{key}[{position}]"
        if isinstance(instance, str) and len(fields) == 1:
            instance = {fields[0]: instance}
        if not isinstance(instance, dict):
            raise ApiError(f"{where} must be an object with fields {list(fields)}")
        missing = [f for f in fields if f not in instance]
        extra = [f for f in instance if f not in fields]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"unexpected {extra}")
            raise ApiError(f"{where}: {' and '.join(parts)}; {task.name} takes exactly {list(fields)}")
        for field in fields:
            columns[field].append(_check_text(instance[field], where, field, max_chars))
    return columns


def columnar_to_columns(task: Task, inputs, max_instances: int, max_chars: int) -> dict:
    """TF Serving's columnar ``inputs`` (``{field: [texts]}``, or a list for one-field tasks)."""
    fields = task.text_features
    if isinstance(inputs, list) and len(fields) == 1:
        inputs = {fields[0]: inputs}
    if not isinstance(inputs, dict) or sorted(inputs) != sorted(fields):
        raise ApiError(f"'inputs' must be an object with exactly the fields {list(fields)}")
    lengths = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
    if -1 in lengths or len(lengths) != 1:
        raise ApiError("'inputs' must map every field to a list, all of the same length")
    rows = [{f: inputs[f][i] for f in fields} for i in range(lengths.pop())]
    return instances_to_columns(task, rows, max_instances, max_chars, key="inputs")


def parse_labels(task: Task, labels, count: int, key: str = "labels") -> list:
    """Label names or ids (STS-B: numbers in [0, 5]) -> ids / floats, one per instance."""
    if not isinstance(labels, list):
        raise ApiError(f"{key!r} must be a list with one label per instance")
    if len(labels) != count:
        raise ApiError(f"{key!r} has {len(labels)} labels for {count} instances")
    parsed = []
    for position, label in enumerate(labels):
        where = f"{key}[{position}]"
        if task.is_regression:
            if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
                raise ApiError(f"{where}: {task.name} labels are similarity scores (numbers 0 to 5), not {label!r}")
            parsed.append(float(label))
        elif isinstance(label, str) and label in task.label_names:
            parsed.append(task.label_names.index(label))
        elif isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(task.label_names):
            parsed.append(label)
        else:
            raise ApiError(f"{where}: {label!r} is not one of {list(task.label_names)} "
                           f"or an id 0..{len(task.label_names) - 1}")
    return parsed


def _instance_schema(task: Task) -> dict:
    return {
        "type": "object",
        "required": list(task.text_features),
        "additionalProperties": False,
        "properties": {f: {"type": "string"} for f in task.text_features},
    }


def openapi(settings) -> dict:
    """OpenAPI 3 description of every endpoint, generated from the registry and the limits."""
    task_names = list(TASKS)
    error = {"$ref": "#/components/schemas/Error"}
    err_responses = {
        str(code): {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in [(400, "invalid request"), (404, "unknown task or job, or no model loaded for the task"),
                           (413, "over a limit"), (415, "not JSON"), (429, "queue full")]
    }
    task_param = {"name": "task", "in": "path", "required": True, "schema": {"type": "string", "enum": task_names}}
    instance = {"oneOf": [_instance_schema(t) for t in TASKS.values()] + [{"type": "string"}]}
    instances = {"type": "array", "minItems": 1, "maxItems": settings.max_instances, "items": instance}
    label = {"oneOf": [{"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "number"}]}
    scoring = {"type": "object", "required": ["instances", "labels"],
               "properties": {"instances": instances, "labels": {"type": "array", "items": label}}}
    json_body = lambda schema: {"required": True, "content": {"application/json": {"schema": schema}}}  # noqa: E731
    ok = lambda description, schema=None: {  # noqa: E731
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }
    secured = [{"bearer": []}] if settings.api_token else []
    return {
        "openapi": "3.0.3",
        "info": {"title": "glue-tf serving", "version": "1", "description": "GLUE predictions and scoring."},
        "paths": {
            "/predict/{task}": {"post": {
                "summary": "Predict labels (or STS-B scores) for instances",
                "parameters": [task_param],
                "requestBody": json_body({"type": "object", "required": ["instances"], "properties": {"instances": instances}}),
                "responses": {"200": ok("predictions in input order", {"type": "object", "required": ["predictions"],
                              "properties": {"predictions": {"type": "array", "items": {"type": "object"}}}}), **err_responses},
            }},
            "/v1/models/{task}:predict": {"post": {
                "summary": "TF Serving REST predict (row 'instances' or columnar 'inputs')",
                "parameters": [task_param],
                "requestBody": json_body({"type": "object", "properties": {"instances": instances, "inputs": {"type": "object"}}}),
                "responses": {"200": ok("TF Serving 'predictions' or 'outputs'"), **err_responses},
            }},
            "/v1/models/{task}": {"get": {
                "summary": "TF Serving model status", "parameters": [task_param],
                "responses": {"200": ok("model_version_status"), **err_responses},
            }},
            "/score/{task}": {"post": {
                "summary": "Official metrics on labelled instances", "parameters": [task_param], "security": secured,
                "requestBody": json_body(scoring),
                "responses": {"200": ok("metrics and task score"), **err_responses},
            }},
            "/score": {"post": {
                "summary": "Several tasks at once; the GLUE score only with all nine", "security": secured,
                "requestBody": json_body({"type": "object", "required": ["tasks"], "properties": {
                    "tasks": {"type": "object", "additionalProperties": scoring}}}),
                "responses": {"200": ok("per-task metrics, mean, GLUE score"), **err_responses},
            }},
            "/jobs": {"post": {
                "summary": "Score a large labelled set in the background", "security": secured,
                "requestBody": json_body({"type": "object", "properties": {
                    "task": {"type": "string", "enum": task_names}, "instances": {"type": "array"},
                    "labels": {"type": "array"}, "tasks": {"type": "object"}}}),
                "responses": {"202": ok("the job id"), **err_responses},
            }},
            "/jobs/{job_id}": {"get": {
                "summary": "Job progress and result", "security": secured,
                "parameters": [{"name": "job_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}],
                "responses": {"200": ok("status, progress, result"), **err_responses},
            }},
            "/v1/tasks": {"get": {"summary": "Loaded tasks, labels, fields, versions, dev metrics",
                                  "responses": {"200": ok("tasks")}}},
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": ok("ok")}}},
            "/readyz": {"get": {"summary": "Models loaded", "responses": {"200": ok("ready"), "503": ok("no model")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok("OpenAPI 3")}}},
            "/": {"get": {"summary": "Scoreboard page", "responses": {
                "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        },
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
