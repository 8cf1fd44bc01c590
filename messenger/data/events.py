"""Stream events: one row per recipient, numbered along each user's stream.

A user's events are numbered by bumping ``users.last_event_id`` inside the
writing transaction. That UPDATE holds the user's row lock until commit, so a
second writer for the same user waits, and takes the next number only after
the first has committed or rolled back. Numbers along one stream therefore
appear in commit order with no gaps, and "every event after id N" is a safe
resume cursor. A global serial would not be: ids are drawn before commit, so a
reader could see 6 committed while 5 is still in flight, and skip 5 for good.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from messenger.schema import events, users

MESSAGE = "message"
CONVERSATION = "conversation"
READ = "read"

# Built once with bound parameters (see the note in conversations.py).
_LOCKED_IN_ORDER = (
    sa.select(users.c.id)
    .where(users.c.id.in_(sa.bindparam("recipients", expanding=True)))
    .order_by(users.c.id)
    .with_for_update(key_share=True)
)
_BUMP_COUNTERS = (
    sa.update(users)
    .where(users.c.id.in_(_LOCKED_IN_ORDER.scalar_subquery()))
    .values(last_event_id=users.c.last_event_id + 1)
    .returning(users.c.id, users.c.last_event_id)
)
_INSERT = sa.insert(events)


def record(
    conn: Connection,
    recipient_ids: Iterable[int],
    kind: str,
    payload_for: Callable[[int], dict[str, Any]],
    now: datetime,
) -> dict[int, int]:
    """Store one event of ``kind`` for each recipient; return their event ids.

    ``payload_for`` builds the JSON payload as that recipient sees it. The
    recipients' rows are locked in ascending id order (the sorted sub-select
    locks as it reads), so two writers never wait on each other in a cycle.
    The lock is FOR NO KEY UPDATE, the one a plain UPDATE takes: FOR UPDATE
    would also wait for the key-share locks that foreign key checks of other
    writers hold on the same users, and deadlock with them.
    Two round trips, whatever the number of recipients.
    """
    bumped = conn.execute(_BUMP_COUNTERS, {"recipients": sorted(set(recipient_ids))})
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
    return event_ids


def list_events_after(
    conn: Connection, user_id: int, after_id: int, limit: int
) -> list[sa.Row[Any]]:
    """Up to ``limit`` events of a user with ids above ``after_id``, in order."""
    return list(
        conn.execute(
            sa.select(events.c.id, events.c.kind, events.c.payload)
            .where(events.c.user_id == user_id, events.c.id > after_id)
            .order_by(events.c.id)
            .limit(limit)
        )
    )
