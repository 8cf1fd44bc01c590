"""Accounts and sessions: sign-up, login, tokens, logout, and the guard.

The guard (``login_required``) accepts a token from the Authorization header
or, for EventSource which cannot set headers, from the ``token`` query
parameter. It checks signature, expiry, revocation and that the user still
exists, on every request.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

from messenger import shapes
from messenger.data import users
from messenger.errors import ApiError, ValidationError, unauthorized
from messenger.green import run_off_loop
from messenger.inputs import json_object, string_field
from messenger.runtime import get_db, get_runtime
from messenger.tokens import Token

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/api")

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256

View = TypeVar("View", bound=Callable[..., Any])


def login_required(view: View) -> View:
    """Run the view only for a valid token, with ``g.user`` and ``g.token`` set."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        runtime = get_runtime()
        token = runtime.tokens.verify(_presented_token())
        if token is None:
            raise unauthorized()

        user = users.get_user_for_token(runtime.db, token.user_id, token.token_id)
        if user is None:
            raise unauthorized()

        g.user = user
        g.token = token
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def current_user_id() -> int:
    """The id of the user the guard let in."""
    user_id: int = g.user["id"]
    return user_id


@bp.post("/users")
def sign_up() -> tuple[Response, int]:
    """Create an account and log it in."""
    body = json_object()
    username = string_field(body, "username")
    password = string_field(body, "password")

    errors = {}
    if not username:
        errors["username"] = "Username required"
    elif not USERNAME_PATTERN.fullmatch(username):
        errors["username"] = (
            "Use 1 to 39 letters, digits, _ or -, starting with a letter or digit"
        )

    if not password:
        errors["password"] = "Password required"
    elif not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        errors["password"] = (
            f"Use {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
        )

    if errors or username is None or password is None:
        raise ApiError(422, "Validation failed", errors)

    password_hash = run_off_loop(
        generate_password_hash, password, get_runtime().password_hash_method
    )
    user = users.create_user(get_db(), username, password_hash)
    log.info("user %s signed up", user["id"])
    return jsonify(_login_payload(user)), 201


@bp.post("/login")
def login() -> Response:
    """Log in with username and password, or by username alone in development."""
    body = json_object()
    username = string_field(body, "username")
    password = string_field(body, "password")
    if not username:
        raise ValidationError("username", "Username required")

    if password is None:
        return _development_login(username)

    user = users.find_user_for_login(get_db(), username)
    stored_hash = user["password_hash"] if user else None
    if not _password_matches(stored_hash, password) or user is None:
        raise ApiError(401, "Invalid username or password")

    return jsonify(_login_payload(user))


@bp.get("/auth_user")
@login_required
def auth_user() -> Response:
    """The logged-in user."""
    return jsonify(shapes.user(g.user))


@bp.post("/refresh_token")
@login_required
def refresh_token() -> Response:
    """A fresh token for the same user; the one presented keeps working."""
    text, token = get_runtime().tokens.issue(current_user_id())
    return jsonify({"token": text, "expiresAt": shapes.timestamp(token.expires_at)})


@bp.post("/logout")
@login_required
def logout() -> tuple[str, int]:
    """Revoke the token this request was made with."""
    token: Token = g.token
    users.revoke_token(get_db(), token.token_id, token.expires_at)
    log.info("user %s logged out", token.user_id)
    return "", 204


@bp.get("/usernames")
@login_required
def search_usernames() -> Response:
    """Up to five usernames starting with ``search``, ignoring case."""
    search = request.args.get("search", "").strip()
    if not search:
        raise ValidationError("search", "Search required")

    return jsonify(users.search_usernames(get_db(), search, current_user_id()))


def _development_login(username: str) -> Response:
    if not get_runtime().settings.dev_login:
        raise ValidationError("password", "Password required")

    user = users.find_user_for_login(get_db(), username)
    if user is None:
        raise ApiError(404, "User not found")

    log.info("user %s logged in without a password (development login)", user["id"])
    return jsonify(_login_payload(user))


def _login_payload(user: dict[str, Any]) -> dict[str, Any]:
    text, token = get_runtime().tokens.issue(user["id"])
    return shapes.login_payload(user, text, token.expires_at)


def _password_matches(stored_hash: str | None, password: str) -> bool:
    if stored_hash is None:
        # Hash anyway, so an unknown name answers as slowly as a wrong password.
        stand_in = _stand_in_hash(get_runtime().password_hash_method)
        run_off_loop(check_password_hash, stand_in, password)
        return False

    return run_off_loop(check_password_hash, stored_hash, password)


@functools.cache
def _stand_in_hash(method: str) -> str:
    return generate_password_hash("no account has this password", method=method)


def _presented_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()

    return request.args.get("token", "").strip()
