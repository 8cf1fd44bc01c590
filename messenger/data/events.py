"""Stream events: one row per recipient, numbered along each user's stream.

A user's events are numbered by bumping ``users.last_event_id`` inside the
writing transaction. That UPDATE holds the user's row lock until commit, so a
second writer for the same user waits, and takes the next number only after
the first has committed or rolled back. Numbers along one stream therefore
appear in commit order with no gaps, and "every event after id N" is a safe
resume cursor. A global serial would not be: ids are drawn before commit, so a
reader could see 6 committed while 5 is still in flight, and skip 5 for good.

On PostgreSQL the same UPDATE also sends a NOTIFY per recipient, carrying
only ``user:id``. PostgreSQL delivers it at commit, in commit order, and not
at all on rollback, so listeners in every process learn of exactly the events
that exist. On SQLite the writer's own process is told after commit through
``Database.writing()`` (see ``note_recorded``), and other processes poll.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from messenger.db import note_recorded
from messenger.schema import events, users

MESSAGE = "message"
CONVERSATION = "conversation"
READ = "read"

# The PostgreSQL channel every process LISTENs on.
NOTIFY_CHANNEL = "messenger_events"

# Built once with bound parameters (see the note in conversations.py).
_LOCKED_IN_ORDER = (
    sa.select(users.c.id)
    .where(users.c.id.in_(sa.bindparam("recipients", expanding=True)))
    .order_by(users.c.id)
    .with_for_update(key_share=True)
)
_BUMP_COUNTERS = (
    sa.update(users)
    .where(users.c.id.in_(sa.bindparam("recipients", expanding=True)))
    .values(last_event_id=users.c.last_event_id + 1)
    .returning(users.c.id, users.c.last_event_id)
)
_BUMP_COUNTERS_AND_NOTIFY = _BUMP_COUNTERS.returning(
    sa.func.pg_notify(
        NOTIFY_CHANNEL,
        sa.cast(users.c.id, sa.Text) + ":" + sa.cast(users.c.last_event_id, sa.Text),
    )
)
_INSERT = sa.insert(events)
_COLUMNS = (events.c.user_id, events.c.id, events.c.kind, events.c.payload)
_AFTER = (
    sa.select(*_COLUMNS)
    .where(
        events.c.user_id == sa.bindparam("user_id"),
        events.c.id > sa.bindparam("after_id"),
    )
    .order_by(events.c.id)
    .limit(sa.bindparam("limit"))
)
_EXACT = (
    sa.select(*_COLUMNS)
    .where(
        sa.tuple_(events.c.user_id, events.c.id).in_(
            sa.bindparam("keys", expanding=True)
        )
    )
    .order_by(events.c.user_id, events.c.id)
)
_HEADS = sa.select(users.c.id, users.c.last_event_id).where(
    users.c.id.in_(sa.bindparam("user_ids", expanding=True))
)
_POSITION = sa.select(
    users.c.last_event_id,
    sa.select(events.c.id)
    .where(
        events.c.user_id == sa.bindparam("user_id"),
        events.c.id == sa.bindparam("next_id"),
    )
    .scalar_subquery()
    .label("next_kept"),
).where(users.c.id == sa.bindparam("user_id"))


def record(
    conn: Connection,
    recipient_ids: Iterable[int],
    kind: str,
    payload_for: Callable[[int], dict[str, Any]],
    now: datetime,
) -> dict[int, int]:
    """Store one event of ``kind`` for each recipient; return their event ids.

    ``payload_for`` builds the JSON payload as that recipient sees it.

    On PostgreSQL the recipients' rows are first locked by a statement of
    their own, in ascending id order, so two writers never wait on each other
    in a cycle. The UPDATE then waits for nobody. (Locking in a sub-select of
    the UPDATE deadlocked: the outer UPDATE visits rows in its own order and
    can wait again on a row a concurrent writer changed meanwhile.) The lock
    is FOR NO KEY UPDATE, the one a plain UPDATE takes: FOR UPDATE would also
    wait for the key-share locks that foreign key checks of other writers
    hold on the same users. SQLite writers hold the whole database already.
    Three round trips on PostgreSQL and two on SQLite, whatever the number
    of recipients.
    """
    recipients = {"recipients": sorted(set(recipient_ids))}
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCKED_IN_ORDER, recipients)
        bumped = conn.execute(_BUMP_COUNTERS_AND_NOTIFY, recipients)
    else:
        bumped = conn.execute(_BUMP_COUNTERS, recipients)

    event_ids = {row.id: row.last_event_id for row in bumped}
    conn.execute(
        _INSERT,
        [
            {
                "user_id": user_id,
                "id": event_id,
                "kind": kind,
                "payload": json.dumps(payload_for(user_id), separators=(",", ":")),
                "created_at": now,
            }
            for user_id, event_id in event_ids.items()
        ],
    )
    note_recorded(conn, event_ids.items())
    return event_ids


def list_events_after(
    conn: Connection, user_id: int, after_id: int, limit: int
) -> list[sa.Row[Any]]:
    """Up to ``limit`` events of a user with ids above ``after_id``, in order."""
    return list(
        conn.execute(_AFTER, {"user_id": user_id, "after_id": after_id, "limit": limit})
    )


def list_events(conn: Connection, keys: Iterable[tuple[int, int]]) -> list[sa.Row[Any]]:
    """The events with the given ``(user_id, id)`` keys, by user and id."""
    return list(conn.execute(_EXACT, {"keys": list(keys)}))


def stream_heads(conn: Connection, user_ids: Iterable[int]) -> dict[int, int]:
    """The id of the newest event of each of these users (0 before any)."""
    rows = conn.execute(_HEADS, {"user_ids": list(user_ids)})
    return {row.id: row.last_event_id for row in rows}


def resume_position(
    conn: Connection, user_id: int, after_id: int | None
) -> tuple[int, bool]:
    """Where a stream resuming after ``after_id`` starts, and whether it can.

    Returns the user's newest event id and True when every event after
    ``after_id`` is still kept: ``after_id`` is the newest id, or the event
    just after it exists. An id beyond the newest, or one whose successor was
    pruned, cannot be resumed from.
    """
    next_id = -1 if after_id is None else after_id + 1
    row = conn.execute(_POSITION, {"user_id": user_id, "next_id": next_id}).one()
    head: int = row.last_event_id
    if after_id is None or after_id == head:
        return head, True

    return head, after_id < head and row.next_kept is not None


def prune(conn: Connection, older_than: datetime, limit: int) -> int:
    """Delete up to ``limit`` events created before ``older_than``; return how many.

    On PostgreSQL the rows are picked with SKIP LOCKED, so two processes
    pruning at once never wait on each other.
    """
    doomed = (
        sa.select(events.c.user_id, events.c.id)
        .where(events.c.created_at < older_than)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        doomed = doomed.with_for_update(skip_locked=True)

    deleted = conn.execute(
        sa.delete(events).where(sa.tuple_(events.c.user_id, events.c.id).in_(doomed))
    )
    return deleted.rowcount
