"""Accounts: users, username search and revoked tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from messenger.data import utcnow
from messenger.db import Database
from messenger.errors import ApiError, NotFoundError
from messenger.schema import revoked_tokens, users

User = dict[str, Any]

USERNAME_SEARCH_LIMIT = 5

# The alphabet of usernames (API.md): a prefix with any other character
# matches nobody, and is answered without asking the database.
_USERNAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
)

_USER_COLUMNS = (users.c.id, users.c.username, users.c.avatar_url)

# The guard runs this on every request, so it is built once (see the note in
# conversations.py): the user, unless the token presented was revoked.
_TOKEN_USER = sa.select(*_USER_COLUMNS).where(
    users.c.id == sa.bindparam("user_id", type_=sa.BigInteger()),
    ~sa.exists().where(revoked_tokens.c.token_id == sa.bindparam("token_id")),
)


def username_key(username: str) -> str:
    """The case-folded form under which usernames are unique and searched."""
    return username.lower()


def create_user(db: Database, username: str, password_hash: str) -> User:
    """Store a new account; raise 409 when the name is taken in any case."""
    try:
        with db.writing() as conn:
            row = conn.execute(
                sa.insert(users)
                .values(
                    username=username,
                    username_key=username_key(username),
                    password_hash=password_hash,
                    created_at=utcnow(),
                )
                .returning(*_USER_COLUMNS)
            ).one()
    except sa.exc.IntegrityError:
        raise ApiError(409, "Username is already taken") from None

    return dict(row._mapping)


def find_user_for_login(db: Database, username: str) -> User | None:
    """Return the user with that name (any case) and its password hash, or None."""
    with db.reading() as conn:
        row = conn.execute(
            sa.select(*_USER_COLUMNS, users.c.password_hash).where(
                users.c.username_key == username_key(username)
            )
        ).one_or_none()

    return None if row is None else dict(row._mapping)


def find_user_id(db: Database, username: str) -> int:
    """The id of the user with that name (any case), or raise 404."""
    with db.reading() as conn:
        user_id = conn.execute(
            sa.select(users.c.id).where(users.c.username_key == username_key(username))
        ).scalar_one_or_none()

    if user_id is None:
        raise NotFoundError("User not found")

    return int(user_id)


def get_user_for_token(db: Database, user_id: int, token_id: str) -> User | None:
    """Return the token's user, or None when the user is gone or the token revoked."""
    with db.reading() as conn:
        row = conn.execute(
            _TOKEN_USER, {"user_id": user_id, "token_id": token_id}
        ).one_or_none()

    return None if row is None else dict(row._mapping)


def revoke_token(db: Database, token_id: str, expires_at: datetime) -> None:
    """Make a token unusable from the next request on.

    Revocations of tokens that have expired since are deleted on the way, so
    the table only holds tokens that could still be presented.
    """
    try:
        with db.writing() as conn:
            conn.execute(
                sa.delete(revoked_tokens).where(revoked_tokens.c.expires_at < utcnow())
            )
            conn.execute(
                sa.insert(revoked_tokens).values(
                    token_id=token_id, expires_at=expires_at
                )
            )
    except sa.exc.IntegrityError:
        pass  # a concurrent logout with the same token revoked it first


def search_usernames(db: Database, prefix: str, exclude_id: int) -> list[str]:
    """Usernames starting with ``prefix`` in any case, sorted, at most five.

    The prefix is matched as a key range rather than with LIKE, so ``%``,
    ``_`` and ``\\`` match themselves and the unique index answers the query.
    """
    if not set(prefix) <= _USERNAME_CHARS:
        return []

    low = username_key(prefix)
    high = low[:-1] + chr(ord(low[-1]) + 1)
    with db.reading() as conn:
        rows = conn.execute(
            sa.select(users.c.username)
            .where(
                users.c.username_key >= low,
                users.c.username_key < high,
                users.c.id != exclude_id,
            )
            .order_by(users.c.username_key)
            .limit(USERNAME_SEARCH_LIMIT)
        )
        return list(rows.scalars())
