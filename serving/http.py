"""What every route needs from the HTTP request: the worker's service, the JSON body, the bearer token;
and how every answer is finished: a request id, a JSON log line, metrics, errors in the route's shape."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, current_app, g, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.wsgi import LimitedStream

from serving.errors import ApiError

log = logging.getLogger("glue_tf.serving")
request_log = logging.getLogger("glue_tf.requests")
# A client's X-Request-ID is echoed only if it is a sane token (no log or header injection).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
TF_SERVING_PREFIX = "/v1/models"
# A body a route refused without reading (413, an unknown task) is read and dropped up to this size
# before answering, so the client's keep-alive connection stays usable: gunicorn drains only 64 KiB
# itself and then closes the connection although the answer said keep-alive. Beyond it, it closes.
DRAIN_LIMIT = 16 * 1024 * 1024


def service():
    return current_app.extensions["glue_tf"]


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_body():
    """The body parsed as JSON whatever its Content-Type (TF Serving's own ``curl -d`` sends a form type)."""
    data = _body_bytes()
    g.body_read = True
    if not data.strip():
        raise ApiError("the request body is empty; send a JSON object", code="invalid_json")
    try:
        body = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ApiError(f"the request body is not valid JSON: {str(error)[:200]}", code="invalid_json") from None
    _check_depth(body, service().settings.max_json_depth)
    return body


def _body_bytes() -> bytes:
    """The whole body, or a 4xx: never a truncated body, never a framing error as a 500.

    A body with a Content-Length is Werkzeug's (413 over ``MAX_CONTENT_LENGTH``). A chunked
    body (gunicorn sets ``wsgi.input_terminated``) is read here up to one byte past the limit,
    since Werkzeug's limited stream stops at the limit without saying the body went on.
    """
    if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=True, parse_form_data=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, parts, size = request.environ["wsgi.input"], [], 0
    g.close_connection = True  # until the body has been read to its end
    try:
        while size <= limit:
            part = stream.read(min(1 << 16, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (ParseException, NoMoreData) as error:
        raise ApiError(f"the chunked request body is malformed: {type(error).__name__} {str(error)[:100]}",
                       code="bad_chunked_body") from None
    if size > limit:
        g.close_connection = not _discard(stream)
        raise ApiError(f"the request body is over the limit of {limit} bytes", status=413, code="body_too_large")
    g.close_connection = False
    return b"".join(parts)


def _discard(stream) -> bool:
    """Reads a refused chunked body on to its end (up to ``DRAIN_LIMIT``), so that the client, still
    sending, reads the answer rather than a reset connection; True if the body ended."""
    drained = 0
    try:
        while drained <= DRAIN_LIMIT:
            part = stream.read(1 << 16)
            if not part:
                return True
            drained += len(part)
    except (ParseException, NoMoreData, OSError):
        pass
    return False


def _check_depth(body, limit: int) -> None:
    """400 for arrays and objects nested deeper than ``limit``, before anything walks the body recursively
    (schema validation gives up with an error of its own past 256 levels)."""
    level, containers = 0, [body] if isinstance(body, (dict, list)) else []
    while containers:
        level += 1
        if level > limit:
            raise ApiError(f"the request body nests arrays and objects deeper than {limit} levels "
                           "(GLUE_TF_MAX_JSON_DEPTH)", code="too_deep")
        children = [child for value in containers for child in (value.values() if isinstance(value, dict) else value)]
        containers = [child for child in children if isinstance(child, (dict, list))]


def query_int(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from ``low`` to ``high``: ASCII digits only (``'²'.isdigit()`` is True)."""
    text = request.args.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
        raise ApiError(f"{name} {text[:40]!r} must be a whole number from {low} to {high}", code="bad_query")
    return int(text)


def require_token(view):
    """Decorates a view that needs ``Authorization: Bearer <GLUE_TF_API_TOKEN>`` when a token is set."""
    @functools.wraps(view)
    def guarded(*args, **kwargs):
        token_wanted = service().settings.api_token
        if token_wanted:
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            if not hmac.compare_digest(token.encode(), token_wanted.encode()):
                raise ApiError("this endpoint needs 'Authorization: Bearer <GLUE_TF_API_TOKEN>'",
                               status=401, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})
        return view(*args, **kwargs)

    return guarded


def note(task=None, model=None, instances=None) -> None:
    """What the request log line and the metrics say about this request."""
    if task is not None:
        g.task = task.name
    if model is not None:
        g.model_version = model.version
    if instances is not None:
        g.instances = instances


def _error_response(error: ApiError):
    body = error.tf_serving_body() if request.path.startswith(TF_SERVING_PREFIX) else error.body()
    return jsonify(body), error.status, error.headers


def install(app: Flask, request_log_enabled: bool) -> None:
    """Request ids, the JSON request log, request metrics and the error handlers."""
    _setup_request_log(request_log_enabled)
    limit = app.config["MAX_CONTENT_LENGTH"]

    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def finish_request(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        latency = time.perf_counter() - g.get("started", time.perf_counter())
        service().telemetry.observe_request(endpoint, request.method, response.status_code, latency,
                                            g.get("task"), g.get("model_version"))
        _drain_unread_body()
        unread_chunks = request.content_length is None and not g.get("body_read") and \
            "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if g.get("close_connection") or unread_chunks:
            response.headers["Connection"] = "close"  # the rest of a refused chunked body is never read
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        request_log.info(json.dumps({
            "ts": round(time.time(), 3), "request_id": request_id, "method": request.method, "path": request.path,
            "endpoint": endpoint, "task": g.get("task"), "model_version": g.get("model_version"),
            "instances": g.get("instances"), "status": response.status_code,
            "latency_ms": round(1000 * latency, 2), "pid": os.getpid(),
        }))
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(error.code, "http_error")
        message = error.description
        if error.code == 413:
            message = f"the request body is over the limit of {limit} bytes"
        allow = {k: v for k, v in error.get_headers() if k == "Allow"}
        return _error_response(ApiError(message, status=error.code, code=code, headers=allow))

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(ApiError("internal error; see the server log", status=500, code="internal"))


def _drain_unread_body() -> None:
    length = request.content_length or 0
    if g.get("body_read") or not length or length > DRAIN_LIMIT:
        return
    stream = LimitedStream(request.environ["wsgi.input"], length)  # never reads past this request
    try:
        while stream.read(1 << 16):
            pass
    except ClientDisconnected:
        pass  # the client went away: nothing left to keep usable


def _setup_request_log(enabled: bool) -> None:
    """One JSON object per line on stderr, nothing else on the line (log shippers parse it as is)."""
    request_log.disabled = not enabled
    request_log.propagate = False
    if not request_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_log.addHandler(handler)
        request_log.setLevel(logging.INFO)
