"""What create_app() builds once per process, and how views reach it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from config import Settings
from messenger.db import Database
from messenger.feed import Feed
from messenger.hub import Hub
from messenger.tokens import TokenSigner

_EXTENSION_KEY = "messenger"


@dataclass(frozen=True)
class Realtime:
    """The hub of this process's streams, and the feed that fills it."""

    hub: Hub
    feed: Feed


@dataclass(frozen=True)
class Runtime:
    """The settings, database, token signer and realtime machinery of one app."""

    settings: Settings
    db: Database
    tokens: TokenSigner
    password_hash_method: str
    realtime: Realtime


def install(app: Flask, runtime: Runtime) -> None:
    """Attach the runtime to an app; done once, by create_app()."""
    app.extensions[_EXTENSION_KEY] = runtime


def get_runtime(app: Flask | None = None) -> Runtime:
    """The runtime of the given app, or of the app handling this request."""
    runtime: Runtime = (app or current_app).extensions[_EXTENSION_KEY]
    return runtime


def get_db() -> Database:
    """The database of the app handling this request."""
    return get_runtime().db
