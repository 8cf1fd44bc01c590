"""Access tokens: signed with SECRET_KEY, carrying their user, id and expiry.

A token is an itsdangerous signature over ``{"sub", "jti", "exp"}``. The
signature proves the server issued it, ``exp`` bounds its life, and ``jti``
names it so that logout can revoke exactly the token it was called with.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

# Tokens we issue are about 120 characters; anything much longer is not ours,
# and is refused before any signature work.
MAX_TOKEN_CHARS = 512

_SALT = "messenger.access-token"


@dataclass(frozen=True)
class Token:
    """A verified token: whose it is, its id, and when it stops working."""

    user_id: int
    token_id: str
    expires_at: datetime


class TokenSigner:
    """Issues and verifies access tokens with one secret and one lifetime."""

    def __init__(self, secret_key: str, lifetime_secs: int) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=_SALT)
        self._lifetime_secs = lifetime_secs

    def issue(self, user_id: int) -> tuple[str, Token]:
        """Return a new token string for the user and what it carries."""
        expires = int(time.time()) + self._lifetime_secs
        token = Token(
            user_id=user_id,
            token_id=secrets.token_hex(16),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
        claims = {"sub": str(user_id), "jti": token.token_id, "exp": expires}
        return self._serializer.dumps(claims), token

    def verify(self, text: str) -> Token | None:
        """What a token carries, or None if it is forged, malformed or expired."""
        if not text or len(text) > MAX_TOKEN_CHARS:
            return None

        try:
            claims = self._serializer.loads(text)
        except (BadSignature, UnicodeError, ValueError):
            return None

        return _read_claims(claims)


def _read_claims(claims: Any) -> Token | None:
    if not isinstance(claims, dict):
        return None

    sub, jti, exp = claims.get("sub"), claims.get("jti"), claims.get("exp")
    if not isinstance(sub, str) or not sub.isdigit() or not isinstance(jti, str):
        return None

    if not isinstance(exp, int) or exp <= time.time():
        return None

    return Token(
        user_id=int(sub),
        token_id=jti,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
