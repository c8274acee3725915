"""chat state: half-finished chat flows survive a restart

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:34:22.411652
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import bot.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatstate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "platform",
            sqlmodel.sql.sqltypes.AutoString(length=16),
            server_default="telegram",
            nullable=False,
        ),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column(
            "flow", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="", nullable=False
        ),
        sa.Column(
            "step", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="", nullable=False
        ),
        sa.Column("occurrence_id", sa.Integer(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "updated_at",
            bot.store.types.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            bot.store.types.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "chat_id"),
    )
    with op.batch_alter_table("chatstate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chatstate_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_chatstate_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chatstate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatstate_person_id"))
        batch_op.drop_index(batch_op.f("ix_chatstate_expires_at"))
    op.drop_table("chatstate")
