"""drafts: a schedule under review is a row, shared by the web review page and chat /import

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import bot.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("source_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("source_bytes", sa.LargeBinary(), nullable=True),
        sa.Column(
            "source_lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column(
            "task_lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bot.store.types.UTCDateTime(), nullable=False),
        sa.Column("applied_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_draft_schedule_id"), "draft", ["schedule_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_draft_schedule_id"), table_name="draft")
    op.drop_table("draft")
