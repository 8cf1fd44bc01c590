"""Fixtures shared by every test: a database of each kind, the app, and people.

Every test that asks for ``app`` (or anything built on it) runs twice: once on
a SQLite file and once on a PostgreSQL database made for this test run on the
local server. Tables are emptied after each test.

PostgreSQL is found at MESSENGER_TEST_POSTGRES_URL (default: the local server
as user postgres). When it cannot be reached its tests are skipped with the
reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import config
from messenger import create_app
from messenger.schema import metadata

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "MESSENGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Hashing with scrypt costs ~100 ms a password; tests create hundreds of
# accounts, so they use a cheap method. Production always uses scrypt.
TEST_PASSWORD_HASH = "pbkdf2:sha256:1"
PASSWORD = "correct horse battery"


def migrate(url: str) -> None:
    """Bring a database to the newest schema with Alembic, as the release step does."""
    alembic_config = AlembicConfig(str(PROJECT_DIR / "alembic.ini"))
    alembic_config.attributes["url"] = url
    command.upgrade(alembic_config, "head")


def postgres_url(database: str) -> str:
    """The SQLAlchemy URL of a database on the test PostgreSQL server."""
    admin = sa.engine.make_url(
        config.database_url({"DATABASE_URL": POSTGRES_ADMIN_URL})
    )
    return admin.set(database=database).render_as_string(hide_password=False)


def _admin_engine() -> sa.Engine:
    url = postgres_url("postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)

    pytest.skip(f"PostgreSQL not reachable ({reason})")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Callable[[], str]]:
    """A factory of fresh, migrated PostgreSQL databases, dropped at the end."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        engine.dispose()
        _unavailable(str(error.orig).strip().splitlines()[0])

    created: list[str] = []

    def create_database() -> str:
        name = f"messenger_test_{secrets.token_hex(6)}"
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

        created.append(name)
        url = postgres_url(name)
        migrate(url)
        return url

    yield create_database

    with engine.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database of each kind, shared by the tests of this run."""
    if request.param == "postgresql":
        create_database: Callable[[], str] = request.getfixturevalue("postgres_server")
        return create_database()

    path = tmp_path_factory.mktemp("sqlite") / "messenger.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> config.Settings:
    """Settings for a test app: the test database and a fixed secret."""
    return config.load(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "MESSENGER_INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )


@pytest.fixture
def make_app(settings: config.Settings) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database; ``make_app(dev_login=True)`` changes settings.

    Every table is emptied once the test is over.
    """
    apps: list[Flask] = []

    def build(**changes: Any) -> Flask:
        app = create_app(
            replace(settings, **changes), password_hash_method=TEST_PASSWORD_HASH
        )
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build

    if apps:
        _empty_tables(settings.database_url)

    for app in apps:
        runtime = app.extensions["messenger"]
        runtime.realtime.feed.stop()
        runtime.db.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with default settings on the test database."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client for ``app``."""
    return app.test_client()


@dataclass
class Person:
    """A signed-up user and the token they use."""

    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this person."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def sign_up(client: FlaskClient) -> Callable[[str], Person]:
    """Sign someone up through the API and return them with their token."""

    def sign_up(username: str) -> Person:
        response = client.post(
            "/api/users", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return Person(body["authUser"]["id"], username, body["token"])

    return sign_up


@pytest.fixture
def alice(sign_up: Callable[[str], Person]) -> Person:
    """A signed-up user."""
    return sign_up("alice")


@pytest.fixture
def bob(sign_up: Callable[[str], Person]) -> Person:
    """Another signed-up user."""
    return sign_up("bob")


@pytest.fixture
def mallory(sign_up: Callable[[str], Person]) -> Person:
    """A signed-up user who is in nobody's conversation."""
    return sign_up("mallory")


@pytest.fixture
def conversation(client: FlaskClient, alice: Person, bob: Person) -> dict[str, Any]:
    """The conversation Alice started with Bob."""
    response = client.post(
        "/api/conversations", json={"username": "bob"}, headers=alice.headers
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def send(
    client: FlaskClient,
    person: Person,
    conversation_id: str,
    content: str,
    **extra: Any,
) -> Any:
    """Send a message and return the response."""
    return client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"content": content, **extra},
        headers=person.headers,
    )


# Text that would show an error body leaks internals.
INTERNAL_MARKERS = [
    "Traceback",
    'File "',
    "sqlalchemy",
    "psycopg2",
    "sqlite3",
    "OperationalError",
    "SELECT ",
    "INSERT ",
    "werkzeug",
    str(PROJECT_DIR),
    "site-packages",
]


def assert_json_error(response: TestResponse, status: int) -> dict[str, Any]:
    """Check the shape every error shares, and return the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"

    body: dict[str, Any] = response.get_json()
    assert isinstance(body["message"], str)
    assert body["message"]

    text = response.get_data(as_text=True)
    for marker in INTERNAL_MARKERS:
        assert marker not in text

    return body


def _empty_tables(url: str) -> None:
    engine = sa.create_engine(url)
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            )
        else:
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))

    engine.dispose()
