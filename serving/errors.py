"""The errors a client can cause, and the two shapes they are answered in.

The project's own routes answer ``{"error": {"code", "message"}}``; the TF Serving
routes (``/v1/models/...``) answer TF Serving's ``{"error": "<message>"}`` with the
HTTP status TF Serving gives the same failure. ``ApiError`` carries both the
status and a stable ``code`` so each blueprint renders it in its own shape.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, status: int | None = None, code: str | None = None, headers=None):
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.code = code or self.code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}

    def tf_serving_body(self) -> dict:
        return {"error": self.message}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class ModelNotLoaded(ApiError):
    """A known task without a loaded model: 404, as TF Serving answers for a model it does not serve
    (a 5xx would tell clients and load balancers the service is broken, which it is not)."""

    status = 404
    code = "model_not_loaded"


class Overloaded(ApiError):
    status = 429
    code = "overloaded"


class Unavailable(ApiError):
    status = 503
    code = "unavailable"
