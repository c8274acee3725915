"""occurrence: the open-deadline index leads with the task, for counting a task's open overdue
periods

Planning tells an official how many periods of a recurring duty are overdue and still open.
Counted through the unique (task_id, period_start) index, that read every open row of every
task in the batch: at 100k open occurrences, a third of the SQL of a tick with 1,000 due.
Through (task_id, due_at) where open, it reads each task's overdue rows only.  The index it
replaces (due_at where open) served no query.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.drop_index("ix_occurrence_open_due", table_name="occurrence")
    op.create_index(
        "ix_occurrence_open_task_due",
        "occurrence",
        ["task_id", "due_at"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_occurrence_open_task_due", table_name="occurrence")
    op.create_index(
        "ix_occurrence_open_due", "occurrence", ["due_at"], postgresql_where=OPEN, sqlite_where=OPEN
    )
