"""The tables, as SQLAlchemy Core metadata shared by the data layer and Alembic.

One schema serves SQLite and PostgreSQL. Ids are 64-bit on PostgreSQL and
SQLite's native INTEGER PRIMARY KEY (also 64-bit) there. Times are stored in
UTC and always read back as aware datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only treats "INTEGER PRIMARY KEY" as the auto-assigned rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Usernames are ASCII, so their lower-cased key compares byte by byte; the C
# collation lets PostgreSQL answer prefix ranges from the plain b-tree index.
UsernameKey = sa.String(39).with_variant(sa.String(39, collation="C"), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None

        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("only timezone-aware datetimes are stored")

        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)

        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None

        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)

        return value.astimezone(UTC)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("username", sa.String(39), nullable=False),
    sa.Column("username_key", UsernameKey, nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("avatar_url", sa.String(2048), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # The id of the newest stream event of this user. Bumped under the row lock
    # of this row, so event ids grow in commit order along the user's stream.
    sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Index("ix_users_username_key", "username_key", unique=True),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    # The two participants, smaller id first: the unique pair is what makes
    # "one conversation per pair of users" a guarantee of the database.
    sa.Column(
        "user_low_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "user_high_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("last_message_id", sa.BigInteger(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_activity_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("user_low_id", "user_high_id"),
    sa.CheckConstraint("user_low_id < user_high_id", name="ordered_pair"),
    sa.Index("ix_conversations_user_high_id", "user_high_id"),
)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Copied from the conversation so that a user's list is one index range.
    sa.Column("last_activity_at", UTCDateTime(), nullable=False),
    # The read marker: the newest message read (0 for none), and when it was
    # last moved (null until the first read).
    sa.Column("last_read_message_id", sa.BigInteger(), nullable=False),
    sa.Column("read_at", UTCDateTime(), nullable=True),
    sa.Index(
        "ix_participants_user_id_last_activity_at",
        "user_id",
        "last_activity_at",
        "conversation_id",
    ),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "sender_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("length(content) BETWEEN 1 AND 480", name="content_length"),
    sa.UniqueConstraint("conversation_id", "sender_id", "client_id"),
    sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
)

# One row per recipient of everything the stream announces. (user_id, id) is
# the resume cursor: ids count up along one user's stream without gaps.
events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "user_id",
        Id,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", sa.BigInteger(), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_events_created_at", "created_at"),
)

# Tokens revoked by logout, kept until they would have expired anyway.
revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index("ix_revoked_tokens_expires_at", "expires_at"),
)
