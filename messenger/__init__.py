"""Messenger: a realtime one-to-one web messenger.

``create_app()`` is the one place that wires the service together: it reads
the settings, builds the database engine, the token signer and the realtime
hub and feed, and registers the blueprints. Importing this package starts
nothing; the feed's thread starts with the first stream.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from flask import Flask

import config
from messenger import auth, conversations, messages, ops, stream, web
from messenger.db import Database
from messenger.errors import register_error_handlers
from messenger.feed import Feed
from messenger.green import make_psycopg2_cooperative
from messenger.hub import Hub
from messenger.inputs import refuse_oversized_body
from messenger.runtime import Realtime, Runtime, get_runtime, install
from messenger.tokens import TokenSigner

log = logging.getLogger(__name__)

# API.md: bodies over 64 KiB are answered 413.
MAX_BODY_BYTES = 64 * 1024

SECRET_KEY_FILE = "secret_key"


def create_app(
    settings: config.Settings | None = None,
    *,
    password_hash_method: str = "scrypt",
) -> Flask:
    """Build the WSGI app from settings (by default, from the environment)."""
    settings = settings or config.load()
    app = Flask(__name__, instance_path=str(settings.instance_path), static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["SECRET_KEY"] = _secret_key(settings)

    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    if db.is_postgresql and make_psycopg2_cooperative():
        log.info("psycopg2 made cooperative for gevent")

    hub = Hub(
        max_streams_per_user=settings.max_streams_per_user,
        buffer_events=settings.sse_buffer_events,
    )
    install(
        app,
        Runtime(
            settings=settings,
            db=db,
            tokens=TokenSigner(app.config["SECRET_KEY"], settings.token_lifetime_secs),
            password_hash_method=password_hash_method,
            realtime=Realtime(
                hub, Feed(db, hub, retention_days=settings.event_retention_days)
            ),
        ),
    )
    register_error_handlers(app)
    ops.init_request_logging(app)
    app.before_request(refuse_oversized_body)
    blueprints = (ops.bp, auth.bp, conversations.bp, messages.bp, stream.bp, web.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    return app


def close_streams(app: Flask) -> int:
    """End every open stream of this process so clients reconnect elsewhere.

    Called when a worker is told to stop; returns how many streams were open.
    """
    realtime = get_runtime(app).realtime
    closed = realtime.hub.close_all()
    realtime.feed.stop(timeout=0)
    return closed


def _secret_key(settings: config.Settings) -> str:
    """SECRET_KEY, or in development one generated once and kept on disk."""
    if settings.secret_key:
        return settings.secret_key

    if not settings.development:
        raise config.ConfigError(
            "SECRET_KEY must be set (only MESSENGER_ENV=development generates one)"
        )

    instance = Path(settings.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / SECRET_KEY_FILE
    if not path.exists():
        _write_once(path, secrets.token_urlsafe(48))

    return path.read_text().strip()


def _write_once(path: Path, text: str) -> None:
    """Write a file only if it does not exist yet, safely against other workers."""
    fd, temporary = tempfile.mkstemp(dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

        os.chmod(temporary, 0o600)
        os.link(temporary, path)
    except FileExistsError:
        pass  # another worker wrote it first; theirs is the key
    finally:
        os.unlink(temporary)
