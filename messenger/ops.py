"""Operations: the health check, request ids and the access log.

Each request gets an id (the caller's ``X-Request-ID`` when it looks sane, a
fresh one otherwise), echoed in the response and written on its access line.
The access line never carries a token: the ``token`` query parameter is
redacted, and headers and bodies are not logged at all.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from urllib.parse import quote, urlencode

from flask import Blueprint, Flask, Response, g, jsonify, request

from messenger.runtime import get_db

log = logging.getLogger(__name__)
access_log = logging.getLogger("messenger.access")

bp = Blueprint("ops", __name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REDACTED = "[redacted]"


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers, 503 otherwise."""
    if get_db().ping():
        return jsonify({"status": "ok"}), 200

    return jsonify({"status": "unavailable", "message": "Database unavailable"}), 503


def init_request_logging(app: Flask) -> None:
    """Give every request an id and one access log line."""
    app.before_request(_start_request)
    app.after_request(_finish_request)


def loggable_path() -> str:
    """The request path and query, with the value of ``token`` redacted."""
    # Percent-encoded again, so a decoded newline or quote in the path cannot
    # end the access line early and forge another one.
    path = quote(request.path)
    if not request.query_string:
        return path

    pairs = [
        (name, _REDACTED if name == "token" else value)
        for name, value in request.args.items(multi=True)
    ]
    return f"{path}?{urlencode(pairs, safe='[]')}"


def _start_request() -> None:
    g.started_at = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.request_id
    if request.path.startswith("/api/"):
        # Answers carry tokens and private messages: no cache may keep them.
        response.headers.setdefault("Cache-Control", "no-store")

    response.headers["X-Content-Type-Options"] = "nosniff"
    if not access_log.isEnabledFor(logging.INFO):
        return response

    duration_ms = (time.perf_counter() - g.started_at) * 1000
    access_log.info(
        '%s "%s %s" %s %.1fms',
        g.request_id,
        request.method,
        loggable_path(),
        response.status_code,
        duration_ms,
    )
    return response
