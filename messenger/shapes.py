"""The JSON shapes of API.md, built from database rows.

Ids leave as strings (JavaScript cannot hold every 64-bit integer) and times
as RFC 3339 in UTC with microseconds and a ``Z``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]


def timestamp(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC, e.g. 2026-12-03T09:15:02.123456Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def optional_timestamp(value: datetime | None) -> str | None:
    """Format a datetime like timestamp(), passing None through."""
    return None if value is None else timestamp(value)


def user(row: Mapping[Any, Any]) -> Json:
    """The User shape from a row with id, username and avatar_url."""
    return {
        "id": str(row["id"]),
        "username": row["username"],
        "avatarURL": row["avatar_url"],
    }


def message(
    row: Mapping[Any, Any], viewer_id: int, *, with_conversation: bool = False
) -> Json:
    """The Message shape as one viewer sees it.

    ``conversationId`` is only included where API.md asks for it: in the
    response to a send and in stream events.
    """
    shape: Json = {
        "id": str(row["id"]),
        "content": row["content"],
        "createdAt": timestamp(row["created_at"]),
        "mine": row["sender_id"] == viewer_id,
    }
    if with_conversation:
        shape["conversationId"] = str(row["conversation_id"])

    return shape


def login_payload(
    user_row: Mapping[Any, Any], token: str, expires_at: datetime
) -> Json:
    """The body answered to a successful sign-up or login."""
    return {
        "authUser": user(user_row),
        "token": token,
        "expiresAt": timestamp(expires_at),
    }
