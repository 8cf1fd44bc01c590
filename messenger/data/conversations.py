"""Conversations: finding or starting one, listing, reading, read markers.

Every function takes the viewer's id and answers only about conversations the
viewer takes part in. A conversation that is missing and one that belongs to
others raise the same NotFoundError, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from messenger import shapes
from messenger.data import events, utcnow
from messenger.db import Database
from messenger.errors import ApiError, conversation_not_found
from messenger.schema import (
    UTCDateTime,
    conversations,
    messages,
    participants,
    users,
)

Conversation = dict[str, Any]

_viewer = participants.alias("viewer")
_other = participants.alias("other")
_last = messages.alias("last_message")

# The hot statements are built once, with bound parameters, so that a request
# only binds values: building a statement anew also means computing its cache
# key anew, which costs more than the database's answer to it.
_VIEWER = sa.bindparam("viewer_id", type_=sa.BigInteger())

_UNREAD = (
    sa.select(sa.func.count())
    .where(
        messages.c.conversation_id == _viewer.c.conversation_id,
        messages.c.id > _viewer.c.last_read_message_id,
        messages.c.sender_id != _VIEWER,
    )
    .scalar_subquery()
)

# Every column of the Conversation shape, for one viewer.
_CONVERSATIONS = (
    sa.select(
        _viewer.c.conversation_id.label("id"),
        _other.c.read_at.label("other_read_at"),
        users.c.id.label("other_id"),
        users.c.username.label("other_username"),
        users.c.avatar_url.label("other_avatar_url"),
        _last.c.id.label("last_id"),
        _last.c.content.label("last_content"),
        _last.c.created_at.label("last_created_at"),
        _last.c.sender_id.label("last_sender_id"),
        _UNREAD.label("unread_count"),
    )
    .select_from(_viewer)
    .join(conversations, conversations.c.id == _viewer.c.conversation_id)
    .join(
        _other,
        sa.and_(
            _other.c.conversation_id == _viewer.c.conversation_id,
            _other.c.user_id != _VIEWER,
        ),
    )
    .join(users, users.c.id == _other.c.user_id)
    .outerjoin(_last, _last.c.id == conversations.c.last_message_id)
    .where(_viewer.c.user_id == _VIEWER)
)

# A conversation id; not named after a column, which UPDATE would reserve.
_CONVERSATION = sa.bindparam("conversation", type_=sa.BigInteger())

_ONE = _CONVERSATIONS.where(_viewer.c.conversation_id == _CONVERSATION)

_NEWEST_FIRST = (_viewer.c.last_activity_at.desc(), _viewer.c.conversation_id.desc())

_FIRST_PAGE = _CONVERSATIONS.order_by(*_NEWEST_FIRST).limit(sa.bindparam("limit"))

# The page after a cursor: below its (activity time, id) in the list order.
_cursor_at = sa.bindparam("cursor_at", type_=UTCDateTime())
_cursor_id = sa.bindparam("cursor_id", type_=sa.BigInteger())
_NEXT_PAGE = (
    _CONVERSATIONS.where(
        sa.or_(
            _viewer.c.last_activity_at < _cursor_at,
            sa.and_(
                _viewer.c.last_activity_at == _cursor_at,
                _viewer.c.conversation_id < _cursor_id,
            ),
        )
    )
    .order_by(*_NEWEST_FIRST)
    .limit(sa.bindparam("limit"))
)

_CURSOR = sa.select(participants.c.last_activity_at).where(
    participants.c.user_id == _VIEWER,
    participants.c.conversation_id == _cursor_id,
)

# The viewer's read marker in a conversation, locked until commit, with what
# moving it needs: the newest message and both participants.
_LOCK_MARKER = (
    sa.select(
        participants.c.read_at,
        conversations.c.last_message_id,
        conversations.c.user_low_id,
        conversations.c.user_high_id,
    )
    .join(conversations, conversations.c.id == participants.c.conversation_id)
    .where(
        participants.c.conversation_id == _CONVERSATION,
        participants.c.user_id == _VIEWER,
    )
    .with_for_update(of=participants, key_share=True)
)

_MOVE_MARKER = (
    sa.update(participants)
    .where(
        participants.c.conversation_id == _CONVERSATION,
        participants.c.user_id == _VIEWER,
    )
    .values(
        read_at=sa.bindparam("read_at", type_=UTCDateTime()),
        last_read_message_id=sa.bindparam("message_id", type_=sa.BigInteger()),
    )
)


def find_or_start_conversation(
    db: Database, viewer_id: int, other_id: int
) -> tuple[Conversation, bool]:
    """Return the conversation of two users, starting it if there is none.

    The second value tells whether it was started now. Concurrent calls for
    the same pair meet at the unique index on the pair: one inserts, the
    others wait for its commit, insert nothing and read the winner's row.
    """
    if viewer_id == other_id:
        raise ApiError(403, "You cannot start a conversation with yourself")

    low, high = sorted((viewer_id, other_id))
    now = utcnow()
    with db.writing() as conn:
        insert = db.insert_unless_conflicting(conversations).values(
            user_low_id=low, user_high_id=high, created_at=now, last_activity_at=now
        )
        new_id = conn.execute(insert.returning(conversations.c.id)).scalar_one_or_none()
        if new_id is not None:
            _add_participants(conn, new_id, (low, high), now)
            views = {
                user_id: _load_one(conn, user_id, new_id) for user_id in (low, high)
            }
            events.record(
                conn, (low, high), events.CONVERSATION, views.__getitem__, now
            )
            return views[viewer_id], True

        existing_id = conn.execute(
            sa.select(conversations.c.id).where(
                conversations.c.user_low_id == low,
                conversations.c.user_high_id == high,
            )
        ).scalar_one()
        return _load_one(conn, viewer_id, existing_id), False


def get_conversation(
    db: Database, viewer_id: int, conversation_id: int | None
) -> Conversation:
    """Return one conversation as the viewer sees it, or raise NotFoundError."""
    with db.reading() as conn:
        return _load_one(conn, viewer_id, conversation_id)


def list_conversations(
    db: Database, viewer_id: int, before_id: int | None, limit: int, *, paging: bool
) -> list[Conversation]:
    """The viewer's conversations, newest activity first.

    With ``paging``, the list continues after the conversation ``before_id``
    in the same order (keyset pagination: a new message moves a conversation
    to the top, so pages neither repeat nor skip the others). A cursor that
    is not one of the viewer's conversations raises NotFoundError.

    The cursor is a conversation id, so its position is read as it is now: if
    the cursor conversation itself gets a new message between two pages, it
    has moved to the top and the next page starts over from there. Clients
    learn of that message from the stream anyway and drop repeats by id.
    """
    with db.reading() as conn:
        if not paging:
            rows = conn.execute(_FIRST_PAGE, {"viewer_id": viewer_id, "limit": limit})
            return [_shape(row._mapping, viewer_id) for row in rows]

        cursor_at = conn.execute(
            _CURSOR, {"viewer_id": viewer_id, "cursor_id": before_id}
        ).scalar_one_or_none()
        if cursor_at is None or before_id is None:
            raise conversation_not_found()

        rows = conn.execute(
            _NEXT_PAGE,
            {
                "viewer_id": viewer_id,
                "cursor_at": cursor_at,
                "cursor_id": before_id,
                "limit": limit,
            },
        )
        return [_shape(row._mapping, viewer_id) for row in rows]


def get_other_participant(
    db: Database, viewer_id: int, conversation_id: int | None
) -> dict[str, Any]:
    """The User shape of the viewer's counterpart, or raise NotFoundError."""
    conversation = get_conversation(db, viewer_id, conversation_id)
    other: dict[str, Any] = conversation["otherParticipant"]
    return other


def mark_read(db: Database, viewer_id: int, conversation_id: int | None) -> datetime:
    """Move the viewer's read marker to now and to the newest message.

    The marker never moves back, even when clocks of two hosts disagree.
    Both participants get a ``read`` event. Returns the new read time.
    """
    ids = {"viewer_id": viewer_id, "conversation": conversation_id}
    with db.writing() as conn:
        marker = conn.execute(_LOCK_MARKER, ids).one_or_none()
        if marker is None or conversation_id is None:
            raise conversation_not_found()

        now = utcnow()
        read_at = now if marker.read_at is None else max(now, marker.read_at)
        conn.execute(
            _MOVE_MARKER,
            {**ids, "read_at": read_at, "message_id": marker.last_message_id or 0},
        )
        payload = {
            "conversationId": str(conversation_id),
            "userId": str(viewer_id),
            "readAt": shapes.timestamp(read_at),
        }
        events.record(
            conn,
            (marker.user_low_id, marker.user_high_id),
            events.READ,
            lambda _user_id: payload,
            now,
        )

    return read_at


def _add_participants(
    conn: Connection, conversation_id: int, user_ids: tuple[int, int], now: datetime
) -> None:
    conn.execute(
        sa.insert(participants),
        [
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "last_activity_at": now,
                "last_read_message_id": 0,
                "read_at": None,
            }
            for user_id in user_ids
        ],
    )


def _load_one(
    conn: Connection, viewer_id: int, conversation_id: int | None
) -> Conversation:
    if conversation_id is None:
        raise conversation_not_found()

    row = conn.execute(
        _ONE, {"viewer_id": viewer_id, "conversation": conversation_id}
    ).one_or_none()
    if row is None:
        raise conversation_not_found()

    return _shape(row._mapping, viewer_id)


def _shape(row: Any, viewer_id: int) -> Conversation:
    last_message = None
    if row["last_id"] is not None:
        last_message = shapes.message(
            {
                "id": row["last_id"],
                "content": row["last_content"],
                "created_at": row["last_created_at"],
                "sender_id": row["last_sender_id"],
            },
            viewer_id,
        )

    return {
        "id": str(row["id"]),
        "otherParticipant": {
            "id": str(row["other_id"]),
            "username": row["other_username"],
            "avatarURL": row["other_avatar_url"],
        },
        "lastMessage": last_message,
        "hasUnreadMessages": row["unread_count"] > 0,
        "unreadCount": row["unread_count"],
        "otherReadAt": shapes.optional_timestamp(row["other_read_at"]),
    }
