"""Conversation routes: start or find one, list them, read one."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from messenger.auth import current_user_id, login_required
from messenger.data import conversations, users
from messenger.errors import ValidationError
from messenger.inputs import json_object, page_limit, parse_id, string_field
from messenger.runtime import get_db

bp = Blueprint("conversations", __name__, url_prefix="/api/conversations")


@bp.post("")
@login_required
def start_conversation() -> tuple[Response, int]:
    """Start a conversation with a user by name, or return the one that exists."""
    body = json_object()
    username = (string_field(body, "username") or "").strip()
    if not username:
        raise ValidationError("username", "Username required")

    db = get_db()
    other_id = users.find_user_id(db, username)
    conversation, started = conversations.find_or_start_conversation(
        db, current_user_id(), other_id
    )
    return jsonify(conversation), 201 if started else 200


@bp.get("")
@login_required
def list_conversations() -> Response:
    """The caller's conversations, newest activity first, a page at a time."""
    before = request.args.get("before")
    page = conversations.list_conversations(
        get_db(),
        current_user_id(),
        parse_id(before),
        page_limit(),
        paging=before is not None,
    )
    return jsonify(page)


@bp.get("/<conversation_id>")
@login_required
def get_conversation(conversation_id: str) -> Response:
    """One conversation, with its last message."""
    conversation = conversations.get_conversation(
        get_db(), current_user_id(), parse_id(conversation_id)
    )
    return jsonify(conversation)


@bp.get("/<conversation_id>/other_participant")
@login_required
def get_other_participant(conversation_id: str) -> Response:
    """The other person in a conversation."""
    user = conversations.get_other_participant(
        get_db(), current_user_id(), parse_id(conversation_id)
    )
    return jsonify(user)
