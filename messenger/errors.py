"""The one error family of the API, and the handlers that render it as JSON.

Every failure a client can see leaves as ``{"message": ...}`` (plus
``"errors"`` for validation), whatever raised it: our own ``ApiError``,
werkzeug's HTTP exceptions (404, 405, 413...) or an unexpected crash, which is
logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client with a status and a human message."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class NotFoundError(ApiError):
    """The thing asked for does not exist, or is not the caller's to see."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class ValidationError(ApiError):
    """A field failed validation: 422 with that field's message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(422, "Validation failed", {field: message})


class BadRequestError(ApiError):
    """The request is malformed: unreadable JSON or values of the wrong type."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def unauthorized() -> ApiError:
    """The one answer for a missing, malformed, expired or revoked token."""
    return ApiError(401, "Unauthorized")


def conversation_not_found() -> NotFoundError:
    """The answer for a conversation that is missing or someone else's."""
    return NotFoundError("Conversation not found")


def error_response(
    status: int, message: str, errors: dict[str, str] | None = None
) -> Response:
    """Render the JSON error shape with the given status."""
    body: dict[str, object] = {"message": message}
    if errors:
        body["errors"] = errors

    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Make every error the app can raise leave as JSON."""
    app.register_error_handler(ApiError, _render_api_error)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(sa.exc.OperationalError, _render_unavailable)
    app.register_error_handler(sa.exc.TimeoutError, _render_unavailable)
    app.register_error_handler(Exception, _render_unexpected)


def _render_api_error(error: ApiError) -> Response:
    response = error_response(error.status, error.message, error.errors)
    response.headers.update(error.headers)
    return response


def _render_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    response = error_response(status, _HTTP_MESSAGES.get(status, error.name))
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value

    return response


def _render_unavailable(error: Exception) -> Response:
    # The database is down, the pool exhausted or a lock wait failed: a retry
    # may succeed. The driver's first line says which; SQL and parameters,
    # which could carry message text, are left out.
    cause = getattr(error, "orig", None) or error
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    log.error(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        type(cause).__name__,
        reason,
    )
    response = error_response(503, "Service temporarily unavailable")
    response.headers["Retry-After"] = "5"
    return response


def _render_unexpected(error: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return error_response(500, "Internal server error")


_HTTP_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request body too large. 64 KiB max",
    415: "Content type of application/json required",
    429: "Too many requests",
}
