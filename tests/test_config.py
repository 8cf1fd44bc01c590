"""Settings from the environment, and how create_app() treats SECRET_KEY.

``config.load()`` is given plain dicts, so no test depends on the real
environment. The app-building tests use their own SQLite file and instance
folder under tmp_path; they do not need both databases.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

import config
from messenger import SECRET_KEY_FILE, create_app
from tests.conftest import PASSWORD, TEST_PASSWORD_HASH, migrate

NUMBER_VARIABLES = [
    "MESSENGER_TOKEN_LIFETIME",
    "MESSENGER_SSE_HEARTBEAT",
    "MESSENGER_SSE_RETRY_MS",
    "MESSENGER_MAX_STREAMS_PER_USER",
    "MESSENGER_EVENT_RETENTION_DAYS",
    "MESSENGER_DB_POOL_SIZE",
]

WHOLE_NUMBER_VARIABLES = [
    name for name in NUMBER_VARIABLES if name != "MESSENGER_SSE_HEARTBEAT"
]


# database_url()


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    environ = {"MESSENGER_INSTANCE_PATH": str(tmp_path / "instance")}

    url = config.database_url(environ)

    assert url == f"sqlite:///{tmp_path / 'instance' / 'messenger.sqlite3'}"
    assert not config.is_postgresql(url)


@pytest.mark.parametrize("environ", [{}, {"MESSENGER_INSTANCE_PATH": ""}])
def test_default_instance_folder_is_the_project_one(environ):
    expected = config.DEFAULT_INSTANCE_DIR / config.SQLITE_FILE_NAME

    assert config.database_url(environ) == f"sqlite:///{expected}"
    assert config.instance_path(environ) == config.DEFAULT_INSTANCE_DIR


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_database_url_means_the_default(tmp_path, blank):
    environ = {"DATABASE_URL": blank, "MESSENGER_INSTANCE_PATH": str(tmp_path)}

    assert config.database_url(environ) == f"sqlite:///{tmp_path}/messenger.sqlite3"


@pytest.mark.parametrize(
    "given",
    [
        "postgres://user:secret@db.example.com:5432/messenger",
        "postgresql://user:secret@db.example.com:5432/messenger",
        "postgresql+psycopg2://user:secret@db.example.com:5432/messenger",
    ],
)
def test_postgres_urls_select_psycopg2(given):
    url = config.database_url({"DATABASE_URL": given})

    assert url == "postgresql+psycopg2://user:secret@db.example.com:5432/messenger"
    assert config.is_postgresql(url)


def test_postgres_url_keeps_its_query_string():
    given = "postgres://u:p@host/db?sslmode=require"

    url = config.database_url({"DATABASE_URL": given})

    assert url == "postgresql+psycopg2://u:p@host/db?sslmode=require"


def test_sqlite_url_is_kept(tmp_path):
    given = f"sqlite:///{tmp_path}/other.sqlite3"

    assert config.database_url({"DATABASE_URL": given}) == given


@pytest.mark.parametrize(
    "given",
    [
        "mysql://user:secret@host/messenger",
        "http://example.com/db",
        "sqlite://relative.db",
        "postgres:/missing-slash",
        "messenger.sqlite3",
        "postgresql+asyncpg://user@host/db",
    ],
)
def test_unsupported_database_url_is_refused(given):
    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        config.database_url({"DATABASE_URL": given})

    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        config.load({"DATABASE_URL": given})


# load()


def test_load_defaults(tmp_path):
    settings = config.load({"MESSENGER_INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path}/messenger.sqlite3"
    assert settings.instance_path == tmp_path
    assert settings.secret_key is None
    assert settings.development is False
    assert settings.dev_login is False
    assert settings.token_lifetime_secs == 14 * 24 * 3600
    assert settings.sse_heartbeat_secs == 15.0
    assert settings.sse_retry_ms == 3000
    assert settings.max_streams_per_user == 32
    assert settings.event_retention_days == 7
    assert settings.db_pool_size == 10


def test_load_reads_every_variable(tmp_path):
    settings = config.load(
        {
            "DATABASE_URL": "postgres://u@h/d",
            "MESSENGER_INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "s3cret",
            "MESSENGER_ENV": "development",
            "MESSENGER_DEV_LOGIN": "1",
            "MESSENGER_TOKEN_LIFETIME": " 3600 ",
            "MESSENGER_SSE_HEARTBEAT": "0.25",
            "MESSENGER_SSE_RETRY_MS": "0",
            "MESSENGER_MAX_STREAMS_PER_USER": "4",
            "MESSENGER_EVENT_RETENTION_DAYS": "30",
            "MESSENGER_DB_POOL_SIZE": "3",
        }
    )

    assert settings.database_url == "postgresql+psycopg2://u@h/d"
    assert settings.secret_key == "s3cret"
    assert settings.development is True
    assert settings.dev_login is True
    assert settings.token_lifetime_secs == 3600
    assert settings.sse_heartbeat_secs == 0.25
    assert settings.sse_retry_ms == 0
    assert settings.max_streams_per_user == 4
    assert settings.event_retention_days == 30
    assert settings.db_pool_size == 3


def test_empty_secret_key_counts_as_none():
    assert config.load({"SECRET_KEY": ""}).secret_key is None


@pytest.mark.parametrize("value", ["production", "staging", "", "dev"])
def test_only_development_is_development(value):
    assert config.load({"MESSENGER_ENV": value}).development is False


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " 1 "])
def test_flag_values_meaning_on(value):
    assert config.load({"MESSENGER_DEV_LOGIN": value}).dev_login is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off", "", " "])
def test_flag_values_meaning_off(value):
    assert config.load({"MESSENGER_DEV_LOGIN": value}).dev_login is False


@pytest.mark.parametrize("value", ["2", "maybe", "enabled", "-1"])
def test_unclear_flag_is_refused(value):
    with pytest.raises(config.ConfigError, match="MESSENGER_DEV_LOGIN"):
        config.load({"MESSENGER_DEV_LOGIN": value})


@pytest.mark.parametrize("name", NUMBER_VARIABLES)
@pytest.mark.parametrize("value", ["abc", "1e", "ten", "-5", "0x10"])
def test_non_numbers_are_refused_naming_the_variable(name, value):
    with pytest.raises(config.ConfigError, match=name):
        config.load({name: value})


@pytest.mark.parametrize("name", WHOLE_NUMBER_VARIABLES)
def test_fractions_are_refused_for_whole_numbers(name):
    with pytest.raises(config.ConfigError, match=name):
        config.load({name: "1.5"})


@pytest.mark.parametrize(
    ("name", "attribute", "lowest"),
    [
        ("MESSENGER_TOKEN_LIFETIME", "token_lifetime_secs", 60),
        ("MESSENGER_SSE_RETRY_MS", "sse_retry_ms", 0),
        ("MESSENGER_MAX_STREAMS_PER_USER", "max_streams_per_user", 1),
        ("MESSENGER_EVENT_RETENTION_DAYS", "event_retention_days", 1),
        ("MESSENGER_DB_POOL_SIZE", "db_pool_size", 1),
    ],
)
def test_whole_numbers_have_a_minimum(name, attribute, lowest):
    settings = config.load({name: str(lowest)})
    assert getattr(settings, attribute) == lowest

    with pytest.raises(config.ConfigError, match=name):
        config.load({name: str(lowest - 1)})


@pytest.mark.parametrize("value", ["0", "0.01", "-1", "nan", "NaN", "inf", "-inf"])
def test_heartbeat_below_minimum_or_not_a_number_is_refused(value):
    with pytest.raises(config.ConfigError, match="MESSENGER_SSE_HEARTBEAT"):
        config.load({"MESSENGER_SSE_HEARTBEAT": value})


# create_app() and SECRET_KEY


@pytest.fixture
def database_file_url(tmp_path: Path) -> str:
    """A migrated SQLite database outside the instance folders under test."""
    url = f"sqlite:///{tmp_path / 'db' / 'messenger.sqlite3'}"
    (tmp_path / "db").mkdir()
    migrate(url)
    return url


@pytest.fixture
def build_app(database_file_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps from an environment dict on the test SQLite file."""
    apps: list[Flask] = []

    def build(**environ: str) -> Flask:
        settings = config.load({"DATABASE_URL": database_file_url, **environ})
        app = create_app(settings, password_hash_method=TEST_PASSWORD_HASH)
        apps.append(app)
        return app

    yield build

    for app in apps:
        app.extensions["messenger"].db.dispose()


def sign_up_token(app: Flask, username: str) -> str:
    """Sign a user up on an app and return their token."""
    response = app.test_client().post(
        "/api/users", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.get_json()
    token: str = response.get_json()["token"]
    return token


def accepts(app: Flask, token: str) -> bool:
    """Tell whether an app lets a token in."""
    response = app.test_client().get(
        "/api/auth_user", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code == 200


@pytest.mark.parametrize("env", [{}, {"MESSENGER_ENV": "production"}])
def test_app_refuses_to_start_without_secret_key(build_app, tmp_path, env):
    instance = tmp_path / "instance"

    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        build_app(MESSENGER_INSTANCE_PATH=str(instance), **env)

    assert not (instance / SECRET_KEY_FILE).exists()


def test_app_uses_the_given_secret_key(build_app, tmp_path):
    instance = tmp_path / "instance"

    app = build_app(
        SECRET_KEY="given-key",
        MESSENGER_ENV="development",
        MESSENGER_INSTANCE_PATH=str(instance),
    )

    assert app.config["SECRET_KEY"] == "given-key"
    assert not (instance / SECRET_KEY_FILE).exists()


def test_development_generates_and_keeps_a_secret_key(build_app, tmp_path):
    instance = tmp_path / "not" / "yet" / "there"

    app = build_app(MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=str(instance))

    key = app.config["SECRET_KEY"]
    assert isinstance(key, str)
    assert len(key) >= 32

    key_file = instance / SECRET_KEY_FILE
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # No temporary file is left beside it.
    assert [path.name for path in instance.iterdir()] == [SECRET_KEY_FILE]


def test_development_reuses_the_kept_key(build_app, tmp_path):
    instance = str(tmp_path / "instance")

    first = build_app(MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=instance)
    second = build_app(MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=instance)

    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    token = sign_up_token(first, "alice")
    assert accepts(second, token)


def test_development_keys_differ_between_instance_folders(build_app, tmp_path):
    # The control for the reuse test: without the kept file, tokens would not
    # carry over from one app to the next.
    first = build_app(
        MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=str(tmp_path / "one")
    )
    second = build_app(
        MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=str(tmp_path / "two")
    )

    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    token = sign_up_token(first, "alice")
    assert accepts(first, token)
    assert not accepts(second, token)


def test_development_uses_a_key_already_in_the_instance_folder(build_app, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / SECRET_KEY_FILE).write_text("kept-by-an-earlier-run\n")

    app = build_app(MESSENGER_ENV="development", MESSENGER_INSTANCE_PATH=str(instance))

    assert app.config["SECRET_KEY"] == "kept-by-an-earlier-run"
