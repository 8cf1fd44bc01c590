"""Messages: sending, with idempotent retries, and reading history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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
    with db.writing() as conn:
        pair = _lock_conversation(conn, sender_id, conversation_id)
        if pair is None or conversation_id is None:
            raise conversation_not_found()

        # Never older than the conversation's last activity, so list order
        # holds even when two hosts' clocks disagree slightly.
        now = max(utcnow(), pair.last_activity_at)
        row = conn.execute(
            db.insert_unless_conflicting(messages)
            .values(
                conversation_id=conversation_id,
                sender_id=sender_id,
                content=content,
                client_id=client_id,
                created_at=now,
            )
            .returning(*_MESSAGE_COLUMNS)
        ).one_or_none()
        if row is None:
            # The (conversation, sender, clientId) index already holds it.
            earlier = conn.execute(
                sa.select(*_MESSAGE_COLUMNS).where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.sender_id == sender_id,
                    messages.c.client_id == client_id,
                )
            ).one()
            shape = shapes.message(earlier._mapping, sender_id, with_conversation=True)
            return shape, False

        conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(last_message_id=row.id, last_activity_at=now)
        )
        is_sender = participants.c.user_id == sender_id
        conn.execute(
            sa.update(participants)
            .where(participants.c.conversation_id == conversation_id)
            .values(
                last_activity_at=now,
                last_read_message_id=sa.case(
                    (is_sender, row.id), else_=participants.c.last_read_message_id
                ),
                read_at=sa.case(
                    (is_sender, sa.literal(now, UTCDateTime())),
                    else_=participants.c.read_at,
                ),
            )
        )
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
    with db.reading() as conn:
        member = conn.execute(
            sa.select(participants.c.user_id).where(
                participants.c.conversation_id == conversation_id,
                participants.c.user_id == viewer_id,
            )
        ).one_or_none()
        if member is None or conversation_id is None:
            raise conversation_not_found()

        query = sa.select(*_MESSAGE_COLUMNS).where(
            messages.c.conversation_id == conversation_id
        )
        if paging:
            cursor = conn.execute(
                sa.select(messages.c.id).where(
                    messages.c.id == before_id,
                    messages.c.conversation_id == conversation_id,
                )
            ).one_or_none()
            if cursor is None or before_id is None:
                raise NotFoundError("Message not found")

            query = query.where(messages.c.id < before_id)

        rows = conn.execute(query.order_by(messages.c.id.desc()).limit(limit))
        return [shapes.message(row._mapping, viewer_id) for row in rows]


def _lock_conversation(
    conn: Connection, sender_id: int, conversation_id: int | None
) -> Any:
    """Lock the sender's conversation row; None when it is not the sender's."""
    return conn.execute(
        sa.select(
            conversations.c.user_low_id,
            conversations.c.user_high_id,
            conversations.c.last_activity_at,
        )
        .where(
            conversations.c.id == conversation_id,
            sa.or_(
                conversations.c.user_low_id == sender_id,
                conversations.c.user_high_id == sender_id,
            ),
        )
        .with_for_update(key_share=True)
    ).one_or_none()
