"""The feed: one background thread per process that fills the hub from the database.

On PostgreSQL it holds one dedicated connection that LISTENs on the events
channel. Writers send ``user:id`` with NOTIFY inside their transaction, so a
notification arrives only once its event is committed, and in commit order.
For each batch of notifications the feed reads the events of users with a
stream in this process in one query, and publishes them to the hub: one read
per notification, however many streams the users have open.

On SQLite a writer in this process wakes the feed right after its commit; a
poll of the users' newest ids every ``SQLITE_POLL_SECS`` catches writes made
by other processes.

Whenever the feed may have missed something (at start, after the listening
connection dropped, after a failed read) it compares the newest event id of
every local user with what their streams have, and brings the streams that
are behind up to date. The thread also prunes events older than the
retention period, in small batches.

Under gunicorn's gevent worker the thread is a greenlet, and psycopg2 and
``select`` yield to the other greenlets while they wait.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import select
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import psycopg2
import psycopg2.extensions
import sqlalchemy as sa

from messenger import sse
from messenger.data import events, utcnow
from messenger.db import Database, EventKeys
from messenger.hub import CATCH_UP, Event, Hub

log = logging.getLogger(__name__)

# How often the feed wakes when nothing happens, to check for stop and prune.
IDLE_TICK_SECS = 1.0

# SQLite has no NOTIFY: other processes' writes reach streams within this.
SQLITE_POLL_SECS = 1.0

# Reconnecting to PostgreSQL backs off from the first to the last value.
RECONNECT_FIRST_SECS = 0.2
RECONNECT_MAX_SECS = 5.0

# A silent listening connection is checked by TCP keepalives after this long,
# so a vanished database host is noticed within about a minute, not hours.
KEEPALIVE_IDLE_SECS = 30
KEEPALIVE_INTERVAL_SECS = 10
KEEPALIVE_COUNT = 3

# Keys per query when reading notified events: well inside any bind limit.
READ_CHUNK_KEYS = 500

# A catch-up reads at most this many events itself; beyond that each stream
# replays from the database on its own, page by page.
CATCH_UP_MAX_EVENTS = 1000

# Pruning runs this often, deleting this many rows per short transaction so
# writers never wait long behind it.
PRUNE_EVERY_SECS = 3600.0
PRUNE_BATCH_ROWS = 1000
PRUNE_PAUSE_SECS = 0.05


_NOTIFY_PAYLOAD = re.compile(r"([0-9]{1,18}):([0-9]{1,18})")


class Feed:
    """The background thread of one process; started by the first stream."""

    def __init__(self, db: Database, hub: Hub, *, retention_days: int) -> None:
        self.db = db
        self.hub = hub
        self.retention = timedelta(days=retention_days)
        self._wakeups: queue.SimpleQueue[EventKeys] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_prune = time.monotonic()
        self._behind = True

    def start(self) -> None:
        """Start the thread unless it runs already."""
        with self._start_lock:
            if self._thread is not None:
                return

            run = self._listen
            if not self.db.is_postgresql:
                # Hooked up only now: with no thread to drain them, wake-ups
                # would pile up for every write of a process without streams.
                self.db.on_events_committed = self._wakeups.put
                run = self._poll

            self._thread = threading.Thread(target=run, name="messenger-feed")
            self._thread.daemon = True
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stopping.set()
        self.db.on_events_committed = None
        if self._thread is not None:
            self._thread.join(timeout)

    def _listen(self) -> None:
        delay = RECONNECT_FIRST_SECS
        while not self._stopping.is_set():
            try:
                connection = self._connect_listener()
            except (psycopg2.Error, OSError) as error:
                log.warning("feed cannot listen: %s", _first_line(error))
                self._stopping.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECS)
                continue

            delay = RECONNECT_FIRST_SECS
            log.info("feed listening on channel %s", events.NOTIFY_CHANNEL)
            try:
                self._serve_notifications(connection)
            except (psycopg2.Error, OSError) as error:
                log.warning("feed lost its connection: %s", _first_line(error))
            finally:
                # Whatever was committed while nobody listened is read back.
                self._behind = True
                connection.close()

    def _connect_listener(self) -> Any:
        arguments, options = self.db.engine.dialect.create_connect_args(
            self.db.engine.url
        )
        connection = psycopg2.connect(
            *arguments,
            **options,
            application_name="messenger-feed",
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE_SECS,
            keepalives_interval=KEEPALIVE_INTERVAL_SECS,
            keepalives_count=KEEPALIVE_COUNT,
        )
        connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {events.NOTIFY_CHANNEL}")

        return connection

    def _serve_notifications(self, connection: Any) -> None:
        while not self._stopping.is_set():
            # Listening comes first, then the catch-up: an event committed in
            # between arrives both ways, and streams drop the repeat by id.
            self._catch_up_if_behind()
            self._prune_if_due()
            readable, _, _ = select.select([connection], [], [], IDLE_TICK_SECS)
            if not readable:
                continue

            connection.poll()
            keys = [_parse_key(note.payload) for note in connection.notifies]
            connection.notifies.clear()
            self._deliver([key for key in keys if key is not None])

    def _poll(self) -> None:
        next_poll = time.monotonic()
        while not self._stopping.is_set():
            self._catch_up_if_behind()
            self._prune_if_due()
            try:
                keys = self._wakeups.get(timeout=IDLE_TICK_SECS)
            except queue.Empty:
                keys = []

            while not self._wakeups.empty():
                keys.extend(self._wakeups.get_nowait())

            self._deliver(keys)
            if time.monotonic() >= next_poll:
                self._behind = True
                next_poll = time.monotonic() + SQLITE_POLL_SECS

    def _deliver(self, keys: EventKeys) -> None:
        """Read the events with these keys that local streams wait for; publish."""
        wanted = sorted({key for key in keys if self.hub.has_streams(key[0])})
        if not wanted:
            return

        try:
            for start in range(0, len(wanted), READ_CHUNK_KEYS):
                with self.db.reading() as conn:
                    rows = events.list_events(
                        conn, wanted[start : start + READ_CHUNK_KEYS]
                    )

                self.hub.publish(_to_events(rows))
        except sa.exc.SQLAlchemyError as error:
            log.warning("feed could not read events: %s", _first_line(error))
            self._behind = True

    def _catch_up_if_behind(self) -> None:
        if not self._behind:
            return

        known = self.hub.heads()
        if not known:
            self._behind = False
            return

        try:
            with self.db.reading() as conn:
                newest = events.stream_heads(conn, known)
                behind = {
                    user_id: known[user_id]
                    for user_id, head in newest.items()
                    if head > known[user_id] >= 0
                }
                rows = _read_after(conn, behind)
        except sa.exc.SQLAlchemyError as error:
            log.warning("feed could not catch up: %s", _first_line(error))
            return

        self._behind = False
        if rows is None:
            self.hub.signal(behind, CATCH_UP)
        else:
            self.hub.publish(_to_events(rows))

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_prune:
            return

        # Jittered, so the processes of a deployment do not prune in step.
        self._next_prune = now + PRUNE_EVERY_SECS * random.uniform(0.9, 1.1)  # noqa: S311
        try:
            removed = prune_events(self.db, self.retention, self._stopping)
        except sa.exc.SQLAlchemyError as error:
            log.warning("feed could not prune events: %s", _first_line(error))
            return

        if removed:
            log.info("pruned %d stream events older than %s", removed, self.retention)


def prune_events(
    db: Database, retention: timedelta, stopping: threading.Event | None = None
) -> int:
    """Delete events older than ``retention`` in small transactions; return how many."""
    cutoff = utcnow() - retention
    removed = 0
    while stopping is None or not stopping.is_set():
        with db.writing() as conn:
            batch = events.prune(conn, cutoff, PRUNE_BATCH_ROWS)

        removed += batch
        if batch < PRUNE_BATCH_ROWS:
            break

        time.sleep(PRUNE_PAUSE_SECS)

    return removed


def _read_after(conn: sa.Connection, behind: dict[int, int]) -> list[Any] | None:
    """Events after each user's known id, or None when there are too many."""
    if not behind:
        return []

    rows: list[Any] = []
    for user_id, after_id in behind.items():
        rows += events.list_events_after(
            conn, user_id, after_id, CATCH_UP_MAX_EVENTS + 1 - len(rows)
        )
        if len(rows) > CATCH_UP_MAX_EVENTS:
            return None

    return rows


def _to_events(rows: Iterable[Any]) -> list[Event]:
    """Events from rows that come in id order for each user, as both reads give them."""
    return [
        Event(row.user_id, row.id, sse.event_frame(row.id, row.kind, row.payload))
        for row in rows
    ]


def _parse_key(payload: str) -> tuple[int, int] | None:
    match = _NOTIFY_PAYLOAD.fullmatch(payload)
    if match is None:
        log.warning("ignoring a malformed notification")
        return None

    return int(match[1]), int(match[2])


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__
