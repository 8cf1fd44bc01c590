"""Settings read from the environment, shared by the app, gunicorn and Alembic.

Every variable is documented in the README's configuration table. Nothing here
touches a database or the network: it only turns strings into typed values and
refuses values that make no sense, naming the variable at fault.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_INSTANCE_DIR = PROJECT_DIR / "instance"
SQLITE_FILE_NAME = "messenger.sqlite3"

# Fourteen days, the lifetime the original client was written for.
DEFAULT_TOKEN_LIFETIME_SECS = 14 * 24 * 3600


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Typed settings; see the README for what each one means."""

    database_url: str
    instance_path: Path
    secret_key: str | None
    development: bool
    dev_login: bool
    token_lifetime_secs: int
    sse_heartbeat_secs: float
    sse_retry_ms: int
    max_streams_per_user: int
    sse_buffer_events: int
    event_retention_days: int
    db_pool_size: int


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    """Return a SQLAlchemy URL for DATABASE_URL, or the SQLite file by default.

    Heroku hands out ``postgres://`` URLs, which SQLAlchemy no longer accepts,
    so both spellings are mapped onto the psycopg2 driver.
    """
    url = environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{instance_path(environ) / SQLITE_FILE_NAME}"

    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]

    if url.startswith(("postgresql+psycopg2://", "sqlite:///")):
        return url

    raise ConfigError(
        "DATABASE_URL must be a postgres://, postgresql:// or sqlite:/// URL"
    )


def instance_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder for local state: the SQLite file and a development secret."""
    return Path(environ.get("MESSENGER_INSTANCE_PATH") or DEFAULT_INSTANCE_DIR)


def is_postgresql(url: str) -> bool:
    """Tell whether a SQLAlchemy URL from database_url() points at PostgreSQL."""
    return url.startswith("postgresql")


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read every setting from the environment, raising ConfigError on bad values."""
    return Settings(
        database_url=database_url(environ),
        instance_path=instance_path(environ),
        secret_key=environ.get("SECRET_KEY") or None,
        development=environ.get("MESSENGER_ENV", "production") == "development",
        dev_login=_flag(environ, "MESSENGER_DEV_LOGIN"),
        token_lifetime_secs=_int(
            environ, "MESSENGER_TOKEN_LIFETIME", DEFAULT_TOKEN_LIFETIME_SECS, low=60
        ),
        sse_heartbeat_secs=_float(environ, "MESSENGER_SSE_HEARTBEAT", 15.0, low=0.05),
        sse_retry_ms=_int(environ, "MESSENGER_SSE_RETRY_MS", 3000, low=0),
        max_streams_per_user=_int(environ, "MESSENGER_MAX_STREAMS_PER_USER", 32, low=1),
        sse_buffer_events=_int(environ, "MESSENGER_SSE_BUFFER", 256, low=1),
        event_retention_days=_int(environ, "MESSENGER_EVENT_RETENTION_DAYS", 7, low=1),
        db_pool_size=_int(environ, "MESSENGER_DB_POOL_SIZE", 10, low=1),
    )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "0").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True

    if value in ("", "0", "false", "no", "off"):
        return False

    raise ConfigError(f"{name} must be 0 or 1, not {value!r}")


def _int(environ: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default

    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None

    if value < low:
        raise ConfigError(f"{name} must be at least {low}, not {value}")

    return value


def _float(
    environ: Mapping[str, str], name: str, default: float, *, low: float
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default

    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None

    if not math.isfinite(value) or value < low:
        raise ConfigError(
            f"{name} must be a finite number of at least {low}, not {raw}"
        )

    return value
