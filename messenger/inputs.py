"""Reading request input: JSON bodies, string fields, ids and page sizes.

Malformed input never reaches the data layer: a body that is not JSON, a
value of the wrong type or text that cannot be stored is refused here with a
4xx, and an id that is not a positive decimal number reads as "no such id".
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from messenger.errors import ApiError, BadRequestError, ValidationError

# API.md: ids are positive decimal integers of at most 18 digits, which keeps
# every id inside a signed 64-bit column.
_ID_PATTERN = re.compile(r"[1-9][0-9]{0,17}")

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

# Past this depth a JSON body is hostile, not a request; json would recurse.
_MAX_JSON_DEPTH = 32


def refuse_oversized_body() -> None:
    """Answer 413 up front to any request that announces a body over the limit.

    Views that read a body get werkzeug's own check; this one also covers
    routes that take no body, so no request is served with 64 KiB of junk.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def parse_id(text: str | None) -> int | None:
    """Return the id a path or cursor names, or None when it cannot be one."""
    if text is None or not _ID_PATTERN.fullmatch(text):
        return None

    return int(text)


def json_object() -> dict[str, Any]:
    """Return the request body as a JSON object, or raise 415 / 400."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Content type of application/json required")

    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequestError("Request body is not valid JSON") from None

    if not isinstance(body, dict):
        raise BadRequestError("Request body must be a JSON object")

    if _nested_deeper_than(body, _MAX_JSON_DEPTH):
        raise BadRequestError("Request body is nested too deeply")

    return body


def string_field(body: dict[str, Any], name: str) -> str | None:
    """Return a string member of a JSON body, None when absent or null.

    A value of another JSON type is a 400. Text that no database can store (a
    NUL character, a lone surrogate from a ``\\ud800`` escape) is a 422 on that
    field.
    """
    value = body.get(name)
    if value is None:
        return None

    if not isinstance(value, str):
        raise BadRequestError(f'"{name}" must be a string')

    if "\x00" in value or not _encodable(value):
        raise ValidationError(name, "Contains characters that are not allowed")

    return value


def page_limit() -> int:
    """Return the ``limit`` query parameter: 1 to 100, 25 when absent."""
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_PAGE_SIZE

    digits = raw.isascii() and raw.isdigit() and len(raw) <= 3
    if not digits or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError(
            "limit", f"Must be a whole number from 1 to {MAX_PAGE_SIZE}"
        )

    return int(raw)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False

    return True


def _nested_deeper_than(value: Any, limit: int) -> bool:
    # Level by level rather than recursively: json accepts bodies nested a
    # few hundred levels deep, and a recursive walk of one overflows the stack.
    level = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (
                container.values() if isinstance(container, dict) else container
            )
            if isinstance(child, dict | list)
        ]
        if not level:
            return False

    return True
