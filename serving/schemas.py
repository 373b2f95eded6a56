"""Request bodies: one JSON Schema per body, used both to validate requests and to write the OpenAPI document.

Each body's schema is built here from the task registry and the service's
limits; ``validate`` checks a request against exactly that schema (with
``jsonschema_rs``) and ``openapi`` publishes the same schemas, so the document
and the checks cannot drift. What JSON Schema cannot say is checked next to it:
text must be valid Unicode (a lone UTF-16 surrogate such as ``"\\ud800"`` is valid
JSON but no string TensorFlow can hold), ``{"b64": ...}`` values must decode to
UTF-8, and over-long texts answer 413. Every failure is an ``ApiError`` naming
the field and the instance, raised before anything reaches the model.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools

import jsonschema_rs

from glue_tf.tasks import TASKS, Task
from serving.errors import ApiError, NotFound


@dataclasses.dataclass(frozen=True)
class Limits:
    max_instances: int
    max_chars: int


def task_or_404(name: str) -> Task:
    task = TASKS.get(name)
    if task is None:
        raise NotFound(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return task


# --- schemas -----------------------------------------------------------------------------

def text(limits: Limits, b64: bool = False) -> dict:
    plain = {"type": "string", "maxLength": limits.max_chars}
    if not b64:
        return plain
    encoded = {"type": "object", "required": ["b64"], "additionalProperties": False,
               "properties": {"b64": {"type": "string"}}, "description": "UTF-8 text, base64-encoded"}
    return {"anyOf": [plain, encoded], "description": "a text, or {\"b64\": <base64 of its UTF-8 bytes>}"}


def instance(task: Task, limits: Limits, b64: bool = False) -> dict:
    fields = list(task.text_features)
    row = {"type": "object", "required": fields, "additionalProperties": False,
           "properties": {f: text(limits, b64) for f in fields}}
    if len(fields) > 1:
        return {**row, "description": f"an object with exactly the fields {fields}"}
    return {"anyOf": [row, text(limits, b64)], "description": f"an object {{{fields[0]!r}: text}} or a bare text"}


def instances(task: Task, limits: Limits, b64: bool = False) -> dict:
    return {"type": "array", "minItems": 1, "maxItems": limits.max_instances, "items": instance(task, limits, b64)}


def columns(task: Task, limits: Limits) -> dict:
    """TF Serving's columnar ``inputs``: ``{field: [texts]}``, or the list alone for one-field tasks."""
    fields = list(task.text_features)
    column = {"type": "array", "minItems": 1, "maxItems": limits.max_instances, "items": text(limits, b64=True)}
    by_name = {"type": "object", "required": fields, "additionalProperties": False,
               "properties": {f: column for f in fields}}
    if len(fields) > 1:
        return {**by_name, "description": f"an object mapping each of {fields} to a list of texts"}
    return {"anyOf": [by_name, column], "description": f"{{{fields[0]!r}: [texts]}} or the list of texts"}


def labels(task: Task, limits: Limits) -> dict:
    if task.is_regression:
        low, high = task.score_range
        label = {"type": "number", "minimum": low, "maximum": high}
    else:
        label = {"anyOf": [{"type": "string", "enum": list(task.label_names)},
                           {"type": "integer", "minimum": 0, "maximum": len(task.label_names) - 1}],
                 "description": f"a label name {list(task.label_names)} or its id"}
    return {"type": "array", "minItems": 1, "maxItems": limits.max_instances, "items": label}


def labelled(task: Task, limits: Limits) -> dict:
    return {"type": "object", "required": ["instances", "labels"], "additionalProperties": False,
            "properties": {"instances": instances(task, limits), "labels": labels(task, limits)}}


def scored_splits(task: Task) -> tuple[str, ...]:
    return task.dev_splits or tuple(task.test_splits)


def score_body(task: Task, limits: Limits) -> dict:
    """One task's labelled data: its first dev split, or ``{"splits": {split: ...}}`` (MNLI's two)."""
    splits = {"type": "object", "minProperties": 1, "additionalProperties": False,
              "properties": {split: labelled(task, limits) for split in scored_splits(task)}}
    by_split = {"type": "object", "required": ["splits"], "additionalProperties": False,
                "properties": {"splits": splits}}
    return {"anyOf": [labelled(task, limits), by_split],
            "description": f"{{'instances', 'labels'}} or {{'splits': {{split: ...}}}} with splits "
                           f"{list(scored_splits(task))}"}


def score_many_body(limits: Limits) -> dict:
    return {"type": "object", "required": ["tasks"], "additionalProperties": False, "properties": {"tasks": {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {name: score_body(task, limits) for name, task in TASKS.items()}}}}


def job_body(task: Task, limits: Limits) -> dict:
    """A one-task job: the task's scoring body plus ``"task"``."""
    variants = []
    for variant in score_body(task, limits)["anyOf"]:
        variants.append({**variant, "required": ["task", *variant["required"]],
                         "properties": {"task": {"type": "string", "enum": [task.name]}, **variant["properties"]}})
    return {"anyOf": variants}


def predict_body(task: Task, limits: Limits) -> dict:
    return {"type": "object", "required": ["instances"], "additionalProperties": False,
            "properties": {"instances": instances(task, limits)}}


def tf_serving_predict_body(task: Task, limits: Limits) -> dict:
    return {"type": "object", "additionalProperties": False,
            "description": "exactly one of 'instances' (row format) or 'inputs' (columnar format)",
            "properties": {"signature_name": {"type": "string"}, "instances": instances(task, limits, b64=True),
                           "inputs": columns(task, limits)}}


def tf_serving_examples_body(task: Task, limits: Limits) -> dict:
    """``:classify`` / ``:regress``: ``examples`` (and an optional shared ``context``) holding the task's fields."""
    field = {f: text(limits, b64=True) for f in task.text_features}
    example = {"type": "object", "additionalProperties": False, "properties": field}
    return {"type": "object", "required": ["examples"], "additionalProperties": False, "properties": {
        "signature_name": {"type": "string"}, "context": example,
        "examples": {"type": "array", "minItems": 1, "maxItems": limits.max_instances, "items": example}}}


# --- validation --------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _validator(kind: str, task_name: str | None, limits: Limits):
    return jsonschema_rs.validator_for(_schema(kind, task_name, limits))


@functools.lru_cache(maxsize=256)
def _schema(kind: str, task_name: str | None, limits: Limits) -> dict:
    """Built once per body kind, task and limits (read-only after): requests reuse it and its validator."""
    build = {"predict": predict_body, "tf_predict": tf_serving_predict_body, "tf_examples": tf_serving_examples_body,
             "score": score_body, "job": job_body}
    if kind == "score_many":
        return score_many_body(limits)
    return build[kind](TASKS[task_name], limits)


def where(path) -> str:
    """``["instances", 1, "sentence"]`` -> ``instances[1].sentence`` (the request body itself: ``body``)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _lookup(schema: dict, schema_path) -> dict:
    node = schema
    for part in list(schema_path)[:-1]:
        node = node[part]
    return node


def _flatten(error):
    """The errors that explain ``error``: inside an anyOf, those of the branch whose type matched."""
    if type(error.kind).__name__ not in ("AnyOf", "OneOfNotValid"):
        return [error]
    meaningful = [sub for branch in error.kind.context for sub in branch
                  if not (type(sub.kind).__name__ == "Type" and list(sub.instance_path) == list(error.instance_path))]
    return [leaf for sub in meaningful for leaf in _flatten(sub)] or [error]


def _check_unicode(value, path=()) -> None:
    """Every string of the body (keys too) must be valid Unicode: no lone UTF-16 surrogates."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                bad = value[error.start]
                raise ApiError(f"{where(path)}: the text holds a lone UTF-16 surrogate (\\u{ord(bad):04x}) at "
                               f"character {error.start}; send valid Unicode text", code="invalid_text") from None
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_unicode(item, (*path, position))
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, path)
            _check_unicode(item, (*path, key))


def validate(body, kind: str, task: Task | None, limits: Limits) -> None:
    """Raises the ``ApiError`` that best explains why ``body`` does not fit the schema of ``kind``."""
    _check_unicode(body)
    schema = _schema(kind, task.name if task else None, limits)
    errors = [leaf for error in _validator(kind, task.name if task else None, limits).iter_errors(body)
              for leaf in _flatten(error)]
    if not errors:
        return
    for error in errors:
        kind_name = type(error.kind).__name__
        if kind_name == "MaxItems":
            raise ApiError(f"{where(error.instance_path)} has more than {error.kind.limit} items; that is the limit "
                           "per request", status=413, code="too_many_instances")
        if kind_name == "MaxLength":
            raise ApiError(f"{where(error.instance_path)} has {len(error.instance)} characters; the limit is "
                           f"{error.kind.limit} (texts are truncated to the model's max sequence length anyway)",
                           status=413, code="text_too_long")
    error = errors[0]
    message = error.message
    if type(error.kind).__name__ in ("AnyOf", "OneOfNotValid"):
        description = _lookup(schema, error.schema_path).get("description")
        message = f"expected {description}" if description else message
    raise ApiError(f"{where(error.instance_path)}: {message}")


# --- from validated bodies to model inputs ---------------------------------------------------

def decode_text(value, path, limits: Limits) -> str:
    """A validated text or ``{"b64": ...}`` value -> str (strict base64: the value must be exactly what
    ``base64.b64encode`` writes for its bytes, which must be UTF-8 within the length limit)."""
    if isinstance(value, str):
        return value
    encoded = value["b64"]
    try:
        raw = base64.b64decode(encoded, validate=True)
        if base64.b64encode(raw).decode("ascii") != encoded:  # validate=True alone accepts "YWJj="
            raise binascii.Error("not canonical")
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError) as error:
        reason = "invalid UTF-8" if isinstance(error, UnicodeDecodeError) else "invalid base64"
        raise ApiError(f"{where(path)}: the b64 value is {reason}; send the base64 of UTF-8 text",
                       code="invalid_text") from None
    if len(decoded) > limits.max_chars:
        raise ApiError(f"{where(path)} has {len(decoded)} characters; the limit is {limits.max_chars}",
                       status=413, code="text_too_long")
    return decoded


def rows_to_columns(task: Task, rows: list, limits: Limits, key: str = "instances") -> dict[str, list[str]]:
    """Validated row-format instances (objects, or bare texts for one-field tasks) -> ``{field: [texts]}``."""
    fields = task.text_features
    out = {field: [] for field in fields}
    for position, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) == {"b64"}:
            row = {fields[0]: row}
        for field in fields:
            out[field].append(decode_text(row[field], (key, position, field), limits))
    return out


def inputs_to_columns(task: Task, inputs, limits: Limits) -> dict[str, list[str]]:
    """Validated columnar ``inputs`` -> ``{field: [texts]}``; every column must have the same length."""
    fields = task.text_features
    if isinstance(inputs, list):
        inputs = {fields[0]: inputs}
    sizes = {len(inputs[f]) for f in fields}
    if len(sizes) != 1:
        raise ApiError(f"inputs: the columns {list(fields)} must have the same length (one text each per instance)")
    return {f: [decode_text(v, ("inputs", f, i), limits) for i, v in enumerate(inputs[f])] for f in fields}


def examples_to_columns(task: Task, body: dict, limits: Limits) -> dict[str, list[str]]:
    """``:classify``/``:regress`` ``examples`` merged with ``context`` -> ``{field: [texts]}``."""
    context = body.get("context") or {}
    out = {field: [] for field in task.text_features}
    for position, example in enumerate(body["examples"]):
        shared = set(context) & set(example)
        if shared:
            raise ApiError(f"examples[{position}]: features {sorted(shared)} are also in 'context'; "
                           "a feature goes in one of them")
        merged = {**context, **example}
        missing = [f for f in task.text_features if f not in merged]
        if missing:
            raise ApiError(f"examples[{position}]: missing features {missing}; {task.name} takes "
                           f"{list(task.text_features)} (from the example or the context)")
        for field in task.text_features:
            out[field].append(decode_text(merged[field], ("examples", position, field), limits))
    return out


def parse_labels(task: Task, values: list) -> list:
    """Validated labels (names or ids; STS-B: scores) -> ids or floats."""
    if task.is_regression:
        return [float(v) for v in values]
    return [task.label_names.index(v) if isinstance(v, str) else int(v) for v in values]


def labelled_splits(task: Task, body: dict, limits: Limits) -> dict[str, tuple[dict, list]]:
    """A validated scoring body -> ``{split: (columns, labels)}``."""
    splits = body["splits"] if "splits" in body else {scored_splits(task)[0]: body}
    parsed = {}
    for split, part in splits.items():
        count = len(part["instances"])
        if len(part["labels"]) != count:
            prefix = f"splits.{split}." if "splits" in body else ""
            raise ApiError(f"{prefix}labels: {len(part['labels'])} labels for {count} instances")
        parsed[split] = (rows_to_columns(task, part["instances"], limits), parse_labels(task, part["labels"]))
    return parsed


# --- the OpenAPI document ------------------------------------------------------------------

def _union(build, limits: Limits) -> dict:
    return {"anyOf": [build(task, limits) for task in TASKS.values()]}


def openapi(settings) -> dict:
    """OpenAPI 3.0 of every route, its request bodies being the very schemas ``validate`` uses."""
    limits = Limits(settings.max_instances, settings.max_text_chars)
    job_limits = Limits(settings.max_job_instances, settings.max_text_chars)
    from serving import openapi_doc  # the route table; kept apart from the schemas it uses

    return openapi_doc.document(settings, {
        "predict": _union(predict_body, limits),
        "tf_predict": _union(tf_serving_predict_body, limits),
        "tf_examples": _union(tf_serving_examples_body, limits),
        "score": _union(score_body, limits),
        "score_many": score_many_body(limits),
        "job": {"anyOf": [score_many_body(job_limits)] + [job_body(t, job_limits) for t in TASKS.values()]},
    })
