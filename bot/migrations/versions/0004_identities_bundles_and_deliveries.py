"""identities, bundles and deliveries: one person across lists, one message per window,
one delivery per chat binding

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:54:12.260008

Data: every person gets an identity; each chat binding moves from its person to that
person's identity (a person's ``unreachable_reason`` moves onto their bindings); queued
notifications go back to ``pending`` (claims lapse; unbound ones wait for a binding) and are
gathered into bundles by the new outbox; a sent notification keeps its message id on a sent
delivery, so a reply quoting an old reminder still finds its task.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import bot.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _string(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _instant() -> bot.store.types.UTCDateTime:
    return bot.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _string(100), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "workerlease",
        sa.Column("name", _string(120), nullable=False),
        sa.Column("incarnation", _string(32), nullable=False),
        sa.Column("host", _string(120), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _instant(), nullable=False),
        sa.Column("heartbeat_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("accounts", _JSON, nullable=True))
        batch_op.create_index(batch_op.f("ix_person_identity_id"), ["identity_id"], unique=False)
        batch_op.create_foreign_key("fk_person_identity_id", "identity", ["identity_id"], ["id"])

    bind = op.get_bind()
    now = datetime.now(UTC)  # migration time: the one place a wall clock is read here
    stamp = now if bind.dialect.name == "postgresql" else now.replace(tzinfo=None)
    people = bind.execute(sa.text("SELECT id, name, unreachable_reason FROM person")).all()
    reasons: dict[int, str] = {}
    for person_id, name, reason in people:
        identity_id = bind.execute(
            sa.text("INSERT INTO identity (name, created_at) VALUES (:n, :t) RETURNING id"),
            {"n": name, "t": stamp},
        ).scalar_one()
        bind.execute(
            sa.text("UPDATE person SET identity_id = :i WHERE id = :p"),
            {"i": identity_id, "p": person_id},
        )
        if reason:
            reasons[person_id] = reason

    with op.batch_alter_table("chatbinding", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("user_id", _string(64), nullable=True))
        batch_op.add_column(sa.Column("via", _string(10), nullable=False, server_default="invite"))
        batch_op.add_column(sa.Column("unreachable_reason", _string(), nullable=True))
        batch_op.add_column(sa.Column("unreachable_at", _instant(), nullable=True))
        batch_op.add_column(sa.Column("last_ok_at", _instant(), nullable=True))
    bind.execute(
        sa.text(
            "UPDATE chatbinding SET identity_id = "
            "(SELECT identity_id FROM person WHERE person.id = chatbinding.person_id), "
            "user_id = chat_id"
        )
    )
    for person_id, reason in reasons.items():
        bind.execute(
            sa.text(
                "UPDATE chatbinding SET unreachable_reason = :r, unreachable_at = :t "
                "WHERE person_id = :p"
            ),
            {"r": reason, "t": stamp, "p": person_id},
        )
    with op.batch_alter_table("chatbinding", schema=None) as batch_op:
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_chatbinding_person_id"))
        batch_op.create_index(
            batch_op.f("ix_chatbinding_identity_id"), ["identity_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_chatbinding_identity_id", "identity", ["identity_id"], ["id"]
        )
        batch_op.drop_column("person_id")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("unreachable_reason")

    op.create_table(
        "bundle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", _string(200), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", _string(32), nullable=False),
        sa.Column("level", _string(8), nullable=True),
        sa.Column("not_before", _instant(), nullable=False),
        sa.Column("state", _string(10), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identity.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("bundle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundle_identity_id"), ["identity_id"], unique=False)
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("binding_id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(16), nullable=False),
        sa.Column("not_before", _instant(), nullable=False),
        sa.Column("expires_at", _instant(), nullable=True),
        sa.Column("state", _string(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", _string(120), nullable=True),
        sa.Column("claim_token", _string(32), nullable=True),
        sa.Column("claimed_until", _instant(), nullable=True),
        sa.Column("sent_at", _instant(), nullable=True),
        sa.Column("message_ref", _string(120), nullable=True),
        sa.Column("last_error", _string(), nullable=True),
        sa.Column("timeouts", sa.Integer(), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.ForeignKeyConstraint(["binding_id"], ["chatbinding.id"]),
        sa.ForeignKeyConstraint(["bundle_id"], ["bundle.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bundle_id", "binding_id"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_binding_id"), ["binding_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_delivery_bundle_id"), ["bundle_id"], unique=False)
        batch_op.create_index(
            "ix_delivery_claimed",
            ["claimed_until"],
            unique=False,
            postgresql_where=sa.text("state = 'claimed'"),
            sqlite_where=sa.text("state = 'claimed'"),
        )
        batch_op.create_index(
            "ix_delivery_due",
            ["not_before"],
            unique=False,
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", _instant(), nullable=True))
        batch_op.add_column(sa.Column("bundle_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notification_bundle_id"), ["bundle_id"], unique=False)
        batch_op.create_foreign_key("fk_notification_bundle_id", "bundle", ["bundle_id"], ["id"])
    # a sent message keeps its id on a delivery (replies that quote it still find the task)
    sent = bind.execute(
        sa.text(
            "SELECT n.id, n.kind, n.level, n.person_id, p.identity_id, n.sent_at, n.message_ref, "
            "n.not_before, n.created_at FROM notification n JOIN person p ON p.id = n.person_id "
            "WHERE n.state = 'sent' AND n.message_ref IS NOT NULL"
        )
    ).all()
    for nid, kind, level, person_id, identity_id, sent_at, ref, not_before, created in sent:
        binding = bind.execute(
            sa.text(
                "SELECT id, platform FROM chatbinding WHERE identity_id = :i "
                "ORDER BY active DESC, id DESC LIMIT 1"
            ),
            {"i": identity_id},
        ).first()
        if binding is None:
            continue
        bundle_id = bind.execute(
            sa.text(
                "INSERT INTO bundle (key, identity_id, person_id, kind, level, not_before, "
                "state, created_at) VALUES (:k, :i, :p, :kind, :l, :nb, 'done', :c) RETURNING id"
            ),
            {
                "k": f"migrated:{nid}",
                "i": identity_id,
                "p": person_id,
                "kind": kind,
                "l": level,
                "nb": not_before,
                "c": created,
            },
        ).scalar_one()
        bind.execute(
            sa.text(
                "INSERT INTO delivery (bundle_id, binding_id, platform, not_before, state, "
                "attempts, sent_at, message_ref, timeouts, created_at) VALUES "
                "(:b, :bi, :pl, :nb, 'sent', 1, :s, :ref, 0, :c)"
            ),
            {
                "b": bundle_id,
                "bi": binding[0],
                "pl": binding[1],
                "nb": not_before,
                "s": sent_at,
                "ref": ref,
                "c": created,
            },
        )
        bind.execute(
            sa.text("UPDATE notification SET bundle_id = :b WHERE id = :n"),
            {"b": bundle_id, "n": nid},
        )
    bind.execute(sa.text("UPDATE notification SET state = 'pending' WHERE state = 'claimed'"))
    bind.execute(sa.text("UPDATE notification SET state = 'waiting' WHERE state = 'unbound'"))
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("attempts")
        batch_op.drop_column("message_ref")

    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planning_error", _string(), nullable=True))
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", _string(16), nullable=True))
        batch_op.add_column(sa.Column("platform", _string(16), nullable=True))
        batch_op.add_column(sa.Column("message_ref", _string(120), nullable=True))


def downgrade() -> None:
    raise NotImplementedError(
        "0004 moves bindings from people to identities and splits sending into deliveries; "
        "restore a backup taken before the upgrade to go back"
    )
