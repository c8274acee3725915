"""notification: no foreign keys to its schedule, occurrence and person; the unused schedule
index dropped (the key to its bundle stays)

PostgreSQL checks each foreign key of each inserted row with a query of its own that also
locks the parent row: of a due tick's 2,179 notifications, the four checks were about 30 ms
of the server's 55 ms for the insert; of the 30,000 of a catch-up after an outage, half a
second of a 2.1 s first pass.  The three parents dropped here are never deleted (people
leave a list by being marked inactive, occurrences and schedules stay) and every id comes
from a row the same transaction read; the audit log has never had these keys either.  The
bundle key stays: bundles are deleted (one made only for keys that existed already).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLite's foreign keys of 0001 have no names: batch mode names them by this convention
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
PARENTS = (("occurrence_id", "occurrence"), ("person_id", "person"), ("schedule_id", "schedule"))


def _key(column: str, parent: str) -> str:
    if op.get_bind().dialect.name == "sqlite":
        return f"fk_notification_{column}_{parent}"
    return f"notification_{column}_fkey"


def upgrade() -> None:
    with op.batch_alter_table("notification", naming_convention=NAMING) as batch_op:
        batch_op.drop_index("ix_notification_schedule_id")
        for column, parent in PARENTS:
            batch_op.drop_constraint(_key(column, parent), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("notification", naming_convention=NAMING) as batch_op:
        for column, parent in PARENTS:
            batch_op.create_foreign_key(_key(column, parent), parent, [column], ["id"])
        batch_op.create_index("ix_notification_schedule_id", ["schedule_id"], unique=False)
