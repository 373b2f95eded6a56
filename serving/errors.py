"""One JSON error shape for every failure a client can cause: ``{"error": {"code", "message"}}``."""

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
