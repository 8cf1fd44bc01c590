"""Initial schema: users, conversations, participants, messages, events, revoked tokens.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in messenger/schema.py as of this revision.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UsernameKey = sa.String(39).with_variant(sa.String(39, collation="C"), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True),
        sa.Column("username", sa.String(39), nullable=False),
        sa.Column("username_key", UsernameKey, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("avatar_url", sa.String(2048), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_username_key", "users", ["username_key"], unique=True)

    op.create_table(
        "conversations",
        sa.Column("id", Id, primary_key=True),
        sa.Column("user_low_id", Id, nullable=False),
        sa.Column("user_high_id", Id, nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("last_activity_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.ForeignKeyConstraint(
            ["user_low_id"],
            ["users.id"],
            name="fk_conversations_user_low_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_high_id"],
            ["users.id"],
            name="fk_conversations_user_high_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "user_low_id",
            "user_high_id",
            name="uq_conversations_user_low_id_user_high_id",
        ),
        sa.CheckConstraint(
            "user_low_id < user_high_id", name="ck_conversations_ordered_pair"
        ),
    )
    op.create_index("ix_conversations_user_high_id", "conversations", ["user_high_id"])

    op.create_table(
        "participants",
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("last_activity_at", Time, nullable=False),
        sa.Column("last_read_message_id", sa.BigInteger(), nullable=False),
        sa.Column("read_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name="pk_participants"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_participants_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_participants_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_participants_user_id_last_activity_at",
        "participants",
        ["user_id", "last_activity_at", "conversation_id"],
    )

    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("sender_id", Id, nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["users.id"],
            name="fk_messages_sender_id_users",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "length(content) BETWEEN 1 AND 480", name="ck_messages_content_length"
        ),
        sa.UniqueConstraint(
            "conversation_id",
            "sender_id",
            "client_id",
            name="uq_messages_conversation_id_sender_id_client_id",
        ),
    )
    op.create_index(
        "ix_messages_conversation_id_id", "messages", ["conversation_id", "id"]
    )

    op.create_table(
        "events",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_events_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])

    op.create_table(
        "revoked_tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_revoked_tokens"),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    for table in (
        "revoked_tokens",
        "events",
        "messages",
        "participants",
        "conversations",
        "users",
    ):
        op.drop_table(table)
