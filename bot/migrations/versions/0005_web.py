"""web console: sign-in and calendar-feed tokens

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webtoken",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", bot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_at", bot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", bot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identity.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("webtoken", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webtoken_identity_id"), ["identity_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webtoken", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webtoken_identity_id"))
    op.drop_table("webtoken")
