"""The data layer: every SQL statement of the service lives in this package.

Views call functions named for what they do (``create_message``,
``list_conversations``) and get plain dicts or API shapes back. Writes that the
stream announces record their events in the same transaction (see events.py).
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
