"""Message routes: send, read history, and move the read marker."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from messenger.auth import current_user_id, login_required
from messenger.data import conversations, messages
from messenger.errors import ValidationError
from messenger.inputs import json_object, page_limit, parse_id, string_field
from messenger.runtime import get_db

bp = Blueprint("messages", __name__, url_prefix="/api")

MAX_CONTENT_CHARS = 480
MAX_CLIENT_ID_CHARS = 64

_BLANK_RUN = re.compile(r"[ \t\r\f]+")


def normalize_content(text: str) -> str:
    """Collapse blanks inside lines, trim lines, drop empty ones (as the original)."""
    lines = (_BLANK_RUN.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


@bp.post("/conversations/<conversation_id>/messages")
@login_required
def send_message(conversation_id: str) -> tuple[Response, int]:
    """Store a message; a retry with the same clientId returns the first one."""
    body = json_object()
    content = normalize_content(string_field(body, "content") or "")
    if not content:
        raise ValidationError("content", "Message content required")

    if len(content) > MAX_CONTENT_CHARS:
        raise ValidationError("content", f"Message too long. {MAX_CONTENT_CHARS} max")

    client_id = string_field(body, "clientId")
    if client_id is not None and not 1 <= len(client_id) <= MAX_CLIENT_ID_CHARS:
        raise ValidationError("clientId", f"Use 1 to {MAX_CLIENT_ID_CHARS} characters")

    message, stored_now = messages.create_message(
        get_db(), current_user_id(), parse_id(conversation_id), content, client_id
    )
    return jsonify(message), 201 if stored_now else 200


@bp.get("/conversations/<conversation_id>/messages")
@login_required
def list_messages(conversation_id: str) -> Response:
    """A page of messages, newest first; reading marks nothing read."""
    before = request.args.get("before")
    page = messages.list_messages(
        get_db(),
        current_user_id(),
        parse_id(conversation_id),
        parse_id(before),
        page_limit(),
        paging=before is not None,
    )
    return jsonify(page)


@bp.post("/conversations/<conversation_id>/read_messages")
@login_required
def read_messages(conversation_id: str) -> tuple[str, int]:
    """Mark everything in the conversation read, up to now."""
    conversations.mark_read(get_db(), current_user_id(), parse_id(conversation_id))
    return "", 204
