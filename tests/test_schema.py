"""The schema: migrations match the metadata, and the database keeps the rules.

The constraints are tested with direct inserts, bypassing the data layer, so
they prove the database itself refuses bad rows. Those inserts run in a
transaction that is rolled back, leaving the shared test database empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

import config
from messenger import create_app
from messenger.db import SQLITE_BUSY_TIMEOUT_MS, Database
from messenger.schema import conversations, messages, metadata, participants, users
from tests.conftest import PASSWORD, PROJECT_DIR, TEST_PASSWORD_HASH

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic configuration aimed at one database, as the tests' migrate() uses."""
    alembic = AlembicConfig(str(PROJECT_DIR / "alembic.ini"))
    alembic.attributes["url"] = url
    return alembic


def schema_differences(url: str) -> list[Any]:
    """What autogenerate would change to make the database match the metadata."""
    database = Database(url, pool_size=1)
    try:
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        database.dispose()


def table_names(url: str) -> set[str]:
    """The tables that exist in a database."""
    database = Database(url, pool_size=1)
    try:
        with database.engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        database.dispose()


@pytest.fixture
def rolled_back(database_url: str) -> Iterator[Connection]:
    """A connection to the test database whose transaction is rolled back at the end."""
    database = Database(database_url, pool_size=1)
    with database.engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()

    database.dispose()


def insert_user(conn: Connection, username: str) -> int:
    """Insert a user row directly and return its id."""
    user_id = conn.execute(
        sa.insert(users)
        .values(username=username, username_key=username.lower(), created_at=NOW)
        .returning(users.c.id)
    ).scalar_one()
    return int(user_id)


def insert_conversation(conn: Connection, low: int, high: int) -> int:
    """Insert a conversation row directly and return its id."""
    conversation_id = conn.execute(
        sa.insert(conversations)
        .values(
            user_low_id=low, user_high_id=high, created_at=NOW, last_activity_at=NOW
        )
        .returning(conversations.c.id)
    ).scalar_one()
    return int(conversation_id)


def refused(conn: Connection, statement: sa.Executable, constraint: str) -> str:
    """Run a statement that must violate ``constraint``; return the error text.

    A savepoint keeps the outer transaction usable after the error.
    """
    with pytest.raises(sa.exc.IntegrityError) as caught, conn.begin_nested():
        conn.execute(statement)

    text = str(caught.value.orig)
    assert constraint in text.lower(), text
    return text


def test_migrations_match_the_metadata(database_url):
    assert schema_differences(database_url) == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_downgrade_to_base_and_upgrade_again(request, kind, tmp_path):
    if kind == "postgresql":
        create_database: Callable[[], str] = request.getfixturevalue("postgres_server")
        url = create_database()
    else:
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        command.upgrade(alembic_config(url), "head")

    assert "messages" in table_names(url)

    command.downgrade(alembic_config(url), "base")
    assert table_names(url) <= {"alembic_version"}

    command.upgrade(alembic_config(url), "head")
    assert {table.name for table in metadata.sorted_tables} <= table_names(url)
    assert schema_differences(url) == []


def test_one_conversation_per_ordered_pair(rolled_back):
    low = insert_user(rolled_back, "low")
    high = insert_user(rolled_back, "high")
    insert_conversation(rolled_back, low, high)

    duplicate = sa.insert(conversations).values(
        user_low_id=low, user_high_id=high, created_at=NOW, last_activity_at=NOW
    )
    refused(rolled_back, duplicate, "unique")

    for first, second in ((high, low), (low, low)):
        unordered = sa.insert(conversations).values(
            user_low_id=first, user_high_id=second, created_at=NOW, last_activity_at=NOW
        )
        refused(rolled_back, unordered, "ck_conversations_ordered_pair")

    count = sa.select(sa.func.count()).select_from(conversations)
    assert rolled_back.execute(count).scalar_one() == 1


def test_message_content_length_is_checked(rolled_back):
    low = insert_user(rolled_back, "low")
    high = insert_user(rolled_back, "high")
    conversation_id = insert_conversation(rolled_back, low, high)

    def message(content: str) -> sa.Insert:
        return sa.insert(messages).values(
            conversation_id=conversation_id,
            sender_id=low,
            content=content,
            created_at=NOW,
        )

    rolled_back.execute(message("x" * 480))
    refused(rolled_back, message("x" * 481), "ck_messages_content_length")
    refused(rolled_back, message(""), "ck_messages_content_length")


def test_username_key_is_unique(rolled_back):
    insert_user(rolled_back, "Alice")
    twin = sa.insert(users).values(
        username="ALICE", username_key="alice", created_at=NOW
    )
    refused(rolled_back, twin, "unique")


def test_foreign_keys_are_enforced(rolled_back):
    user_id = insert_user(rolled_back, "lonely")
    orphan = sa.insert(participants).values(
        conversation_id=999_999,
        user_id=user_id,
        last_activity_at=NOW,
        last_read_message_id=0,
    )
    refused(rolled_back, orphan, "foreign key")


def test_sqlite_connections_are_configured(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    try:
        with database.reading() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        database.dispose()

    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }
    assert SQLITE_BUSY_TIMEOUT_MS > 0


def test_hot_queries_use_indexes_on_postgresql(postgres_server, tmp_path):
    url = postgres_server()
    settings = config.load(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret-key",
            "MESSENGER_INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    app = create_app(settings, password_hash_method=TEST_PASSWORD_HASH)
    db = app.extensions["messenger"].db
    try:
        _fill_with_history(db)
        statements = _capture_statements(app, db)
        plans = {
            name: _plan_without_seqscan(db, *statement)
            for name, statement in statements.items()
        }
    finally:
        db.dispose()

    assert "ix_messages_conversation_id_id" in plans["messages page"]
    assert "ix_users_username_key" in plans["username prefix"]


def _fill_with_history(db: Database) -> None:
    """Add many users, conversations and messages, then refresh statistics."""
    with db.writing() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (username, username_key, created_at) "
                "SELECT 'user' || n, 'user' || n, now() "
                "FROM generate_series(1, 2000) AS n"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO conversations "
                "(user_low_id, user_high_id, created_at, last_activity_at) "
                "SELECT u.id, u.id + 1, now(), now() FROM users AS u "
                "WHERE u.id % 2 = 1 AND u.id < 2000"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages "
                "(conversation_id, sender_id, content, created_at) "
                "SELECT c.id, c.user_low_id, 'message ' || n, now() "
                "FROM conversations AS c, generate_series(1, 40) AS n"
            )
        )

    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def _capture_statements(app: Any, db: Database) -> dict[str, tuple[str, Any]]:
    """The SQL and parameters the app runs for a messages page and a name search."""
    client = app.test_client()
    tokens = []
    for username in ("alice", "bob"):
        response = client.post(
            "/api/users", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201
        tokens.append(response.get_json()["token"])

    alice = {"Authorization": f"Bearer {tokens[0]}"}
    response = client.post(
        "/api/conversations", json={"username": "bob"}, headers=alice
    )
    conversation_id = response.get_json()["id"]
    path = f"/api/conversations/{conversation_id}/messages"
    for number in range(3):
        client.post(path, json={"content": f"hello {number}"}, headers=alice)

    newest = client.get(path, headers=alice).get_json()[0]["id"]
    executed: list[tuple[str, Any]] = []

    def remember(_conn, _cursor, statement, parameters, _context, _many) -> None:
        executed.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    try:
        assert client.get(f"{path}?before={newest}", headers=alice).status_code == 200
        page = executed[-1]
        response = client.get("/api/usernames?search=Us", headers=alice)
        assert response.status_code == 200
        assert len(response.get_json()) == 5
        search = executed[-1]
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", remember)

    assert "messages" in page[0]
    assert "username_key" in search[0]
    return {"messages page": page, "username prefix": search}


def _plan_without_seqscan(db: Database, statement: str, parameters: Any) -> str:
    """PostgreSQL's plan for a statement, with sequential scans discouraged.

    Small test tables make a sequential scan the cheapest plan whatever the
    indexes, so the planner is told to avoid one where an index can serve.
    """
    with db.reading() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars()
        return "\n".join(rows)
