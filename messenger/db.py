"""The database engine: connection pools, SQLite pragmas, transactions.

The rest of the data layer asks for ``db.reading()`` or ``db.writing()`` and
gets a connection inside a transaction that commits when the block ends.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

import config

log = logging.getLogger(__name__)

# How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# How long a request waits for a pooled PostgreSQL connection before the
# service answers 503; a short wait sheds load instead of piling up greenlets.
POOL_TIMEOUT_SECS = 10

# An unreachable PostgreSQL host fails a request (and /healthz) after this
# long instead of after the operating system's TCP timeout of minutes.
CONNECT_TIMEOUT_SECS = 5

# Where a writing transaction collects the (user id, event id) pairs it records.
_RECORDED_KEY = "messenger.recorded_events"

EventKeys = list[tuple[int, int]]


class Database:
    """One engine per process, with a read and a write flavour of transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_postgresql = config.is_postgresql(url)
        if self.is_postgresql:
            self.engine = _postgresql_engine(url, pool_size)
        else:
            self.engine = _sqlite_engine(url)

        # SQLite upgrades a reader to a writer lazily, and that upgrade fails
        # at once when another writer holds the lock. Writers therefore take
        # the lock up front with BEGIN IMMEDIATE, where busy_timeout applies.
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")

        # Called with the keys of the stream events a writing() block
        # recorded, once it has committed; the realtime feed sets it on SQLite.
        self.on_events_committed: Callable[[EventKeys], None] | None = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """Yield a connection in a transaction meant for reads."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """Yield a connection in a transaction that will write.

        Stream events recorded in the block (see ``note_recorded``) are
        handed to ``on_events_committed`` after the commit succeeds.
        """
        recorded: EventKeys = []
        with self._write_engine.begin() as conn:
            conn.info[_RECORDED_KEY] = recorded
            try:
                yield conn
            finally:
                del conn.info[_RECORDED_KEY]

        if recorded and self.on_events_committed is not None:
            self.on_events_committed(recorded)

    def insert_unless_conflicting(self, table: sa.Table) -> Any:
        """An INSERT that skips rows a unique index already holds.

        Both dialects spell it ``ON CONFLICT DO NOTHING``; with RETURNING, a
        skipped row returns nothing, so one round trip tells which happened.
        """
        dialect = postgresql if self.is_postgresql else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def ping(self) -> bool:
        """Tell whether the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            log.warning("database ping failed", exc_info=True)
            return False

        return True

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def note_recorded(conn: Connection, keys: Iterable[tuple[int, int]]) -> None:
    """Remember stream events recorded in the current writing() transaction."""
    recorded = conn.info.get(_RECORDED_KEY)
    if recorded is not None:
        recorded.extend(keys)


def _postgresql_engine(url: str, pool_size: int) -> Engine:
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POOL_TIMEOUT_SECS,
        pool_pre_ping=True,
        # Parameters carry message text and token ids; errors must not log them.
        hide_parameters=True,
        connect_args={
            "application_name": "messenger",
            "connect_timeout": CONNECT_TIMEOUT_SECS,
        },
    )


def _sqlite_engine(url: str) -> Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    engine = sa.create_engine(
        url,
        hide_parameters=True,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        },
    )
    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module, which would
    # otherwise issue its own BEGIN and defeat BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL with NORMAL loses no committed data on an application crash.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
