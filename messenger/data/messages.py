"""Messages: sending, with idempotent retries, and reading history."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from messenger import shapes
from messenger.data import events, utcnow
from messenger.db import Database
from messenger.errors import NotFoundError, conversation_not_found
from messenger.schema import UTCDateTime, conversations, messages, participants

_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.conversation_id,
    messages.c.sender_id,
    messages.c.content,
    messages.c.created_at,
)

# Statements of the hot paths, built once with bound parameters (see the
# note in conversations.py). Parameter names differ from column names, which
# UPDATE reserves for its SET clause.
_conversation = sa.bindparam("conversation", type_=sa.BigInteger())
_sender = sa.bindparam("sender", type_=sa.BigInteger())
_now = sa.bindparam("now", type_=UTCDateTime())
_message = sa.bindparam("message", type_=sa.BigInteger())

# The sender's conversation, locked until commit (FOR NO KEY UPDATE, as an
# UPDATE would lock it); no row when the sender is not in it.
_LOCK_CONVERSATION = (
    sa.select(
        conversations.c.user_low_id,
        conversations.c.user_high_id,
        conversations.c.last_activity_at,
    )
    .where(
        conversations.c.id == _conversation,
        sa.or_(
            conversations.c.user_low_id == _sender,
            conversations.c.user_high_id == _sender,
        ),
    )
    .with_for_update(key_share=True)
)

_EARLIER_SEND = sa.select(*_MESSAGE_COLUMNS).where(
    messages.c.conversation_id == _conversation,
    messages.c.sender_id == _sender,
    messages.c.client_id == sa.bindparam("client_id"),
)

_MAKE_LAST = (
    sa.update(conversations)
    .where(conversations.c.id == _conversation)
    .values(last_message_id=_message, last_activity_at=_now)
)

# Both participants sort the conversation by this activity; the sender has
# also read everything up to the message.
_is_sender = participants.c.user_id == _sender
_TOUCH_PARTICIPANTS = (
    sa.update(participants)
    .where(participants.c.conversation_id == _conversation)
    .values(
        last_activity_at=_now,
        last_read_message_id=sa.case(
            (_is_sender, _message), else_=participants.c.last_read_message_id
        ),
        read_at=sa.case((_is_sender, _now), else_=participants.c.read_at),
    )
)

_IS_MEMBER = sa.select(participants.c.user_id).where(
    participants.c.conversation_id == _conversation,
    participants.c.user_id == sa.bindparam("viewer", type_=sa.BigInteger()),
)

_before = sa.bindparam("before", type_=sa.BigInteger())
_CURSOR = sa.select(messages.c.id).where(
    messages.c.id == _before, messages.c.conversation_id == _conversation
)

_page = (
    sa.select(*_MESSAGE_COLUMNS)
    .where(messages.c.conversation_id == _conversation)
    .order_by(messages.c.id.desc())
    .limit(sa.bindparam("limit"))
)
_FIRST_PAGE = _page
_NEXT_PAGE = _page.where(messages.c.id < _before)


def create_message(
    db: Database,
    sender_id: int,
    conversation_id: int | None,
    content: str,
    client_id: str | None,
) -> tuple[shapes.Json, bool]:
    """Store a message and everything it changes; return it and whether it is new.

    One transaction inserts the message, makes it the conversation's last,
    moves the activity time both participants sort by and the sender's read
    marker, and records a message event for both participants. The
    conversation row stays locked until commit, so messages of one
    conversation get ids and times in the order they commit.

    A ``client_id`` that this sender already used in this conversation
    returns the message stored the first time (and False), whatever the
    content of the retry.
    """
    ids = {"conversation": conversation_id, "sender": sender_id}
    with db.writing() as conn:
        pair = conn.execute(_LOCK_CONVERSATION, ids).one_or_none()
        if pair is None or conversation_id is None:
            raise conversation_not_found()

        # Never older than the conversation's last activity, so list order
        # holds even when two hosts' clocks disagree slightly.
        now = max(utcnow(), pair.last_activity_at)
        row = conn.execute(
            _insert_message(db.is_postgresql),
            {
                "conversation_id": conversation_id,
                "sender_id": sender_id,
                "content": content,
                "client_id": client_id,
                "created_at": now,
            },
        ).one_or_none()
        if row is None:
            # The (conversation, sender, clientId) index already holds it.
            earlier = conn.execute(_EARLIER_SEND, {**ids, "client_id": client_id})
            shape = shapes.message(
                earlier.one()._mapping, sender_id, with_conversation=True
            )
            return shape, False

        changes = {**ids, "message": row.id, "now": now}
        conn.execute(_MAKE_LAST, changes)
        conn.execute(_TOUCH_PARTICIPANTS, changes)
        events.record(
            conn,
            (pair.user_low_id, pair.user_high_id),
            events.MESSAGE,
            lambda user_id: shapes.message(
                row._mapping, user_id, with_conversation=True
            ),
            now,
        )

    return shapes.message(row._mapping, sender_id, with_conversation=True), True


def list_messages(
    db: Database,
    viewer_id: int,
    conversation_id: int | None,
    before_id: int | None,
    limit: int,
    *,
    paging: bool,
) -> list[shapes.Json]:
    """A page of a conversation's messages, newest first.

    With ``paging``, only messages older than ``before_id``, which must be a
    message of this conversation (else NotFoundError). Reading changes nothing:
    the read marker only moves through mark_read().
    """
    params = {
        "conversation": conversation_id,
        "viewer": viewer_id,
        "before": before_id,
        "limit": limit,
    }
    with db.reading() as conn:
        member = conn.execute(_IS_MEMBER, params).one_or_none()
        if member is None or conversation_id is None:
            raise conversation_not_found()

        if paging:
            cursor = conn.execute(_CURSOR, params).one_or_none()
            if cursor is None or before_id is None:
                raise NotFoundError("Message not found")

        rows = conn.execute(_NEXT_PAGE if paging else _FIRST_PAGE, params)
        return [shapes.message(row._mapping, viewer_id) for row in rows]


@functools.cache
def _insert_message(postgresql_dialect: bool) -> Any:
    """INSERT of a message that returns nothing when its clientId was used."""
    dialect = postgresql if postgresql_dialect else sqlite
    return (
        dialect.insert(messages).on_conflict_do_nothing().returning(*_MESSAGE_COLUMNS)
    )
