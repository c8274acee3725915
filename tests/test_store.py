"""The store itself: migrations, SQLite WAL, UTC instants."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, text
from sqlmodel import Session, select

from bot.store.db import current_revision, head_revision, make_engine, normalise_url, open_store
from bot.store.models import AuditEvent
from tests.conftest import local


def test_migrations_bring_an_empty_database_to_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision() is not None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_instants_round_trip_as_aware_utc(engine: Engine) -> None:
    shanghai = local(2022, 5, 1, 8, 30)
    with Session(engine) as session:
        session.add(AuditEvent(at=shanghai, actor="test", action="probe"))
        session.commit()
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent)).all()
    assert event.at == shanghai and event.at.tzinfo is not None
    assert event.at.utcoffset().total_seconds() == 0 and event.at.hour == 0


def test_naive_instants_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(AuditEvent(at=datetime(2022, 5, 1, 8, 30), actor="test", action="probe"))
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()


def test_plain_postgresql_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    assert make_engine("sqlite://").dialect.name == "sqlite"


def test_migrations_match_the_models(engine: Engine) -> None:
    """A model change without its migration fails here, on both backends."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_0004_moves_bindings_to_identities_and_keeps_sent_message_ids(db_url: str) -> None:
    """Upgrading a store that has people, bindings and an outbox keeps every chat reachable."""
    from bot.store.db import upgrade

    engine = make_engine(db_url)
    upgrade(engine, "0003")
    t = "2022-06-01 01:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO schedule (id, title, timezone, calendar, working_hours, content_hash,"
                " planned_from, imported_at) VALUES ('s', 'S', 'Asia/Shanghai', 'cn',"
                " '08:30-18:00', 'h', '2022-06-01', :t)"
            ),
            {"t": t},
        )
        for pid, name, reason in ((1, "张敏", None), (2, "熊伟", "Forbidden: blocked")):
            conn.execute(
                text(
                    "INSERT INTO person (id, schedule_id, name, chief, admin, active,"
                    " unreachable_reason) VALUES (:i, 's', :n, false, false, true, :r)"
                ),
                {"i": pid, "n": name, "r": reason},
            )
            conn.execute(
                text(
                    "INSERT INTO chatbinding (person_id, platform, chat_id, bound_at, active)"
                    " VALUES (:i, 'telegram', :c, :t, true)"
                ),
                {"i": pid, "c": str(500 + pid), "t": t},
            )
        for nid, state, ref in ((1, "sent", "77"), (2, "claimed", None), (3, "unbound", None)):
            conn.execute(
                text(
                    "INSERT INTO notification (id, key, kind, step, person_id, not_before, state,"
                    " attempts, message_ref, created_at) VALUES (:i, :k, 'reminder', 0, 1, :t,"
                    " :s, 1, :r, :t)"
                ),
                {"i": nid, "k": f"k{nid}", "t": t, "s": state, "r": ref},
            )
    upgrade(engine)
    with Session(engine) as session:
        from bot.store.models import ChatBinding, Delivery, Notification, Person

        people = {p.name: p for p in session.exec(select(Person)).all()}
        assert all(p.identity_id for p in people.values())
        bindings = {b.chat_id: b for b in session.exec(select(ChatBinding)).all()}
        assert bindings["501"].identity_id == people["张敏"].identity_id
        assert bindings["502"].unreachable_reason == "Forbidden: blocked"
        assert bindings["501"].unreachable_reason is None
        states = {n.id: n.state for n in session.exec(select(Notification)).all()}
        assert states == {1: "sent", 2: "pending", 3: "waiting"}
        [delivery] = session.exec(select(Delivery)).all()
        assert delivery.message_ref == "77" and delivery.state == "sent"
        assert delivery.binding_id == bindings["501"].id
    engine.dispose()


def test_0007_keeps_occurrences_and_refuses_one_outside_its_tasks_schedule(
    db_url: str, tmp_path: Path
) -> None:
    """The occurrence's two foreign keys become one (its task, within its schedule): a store
    planned under 0006 keeps every row and re-imports as before; a row naming another
    schedule than its task's is refused."""
    from sqlalchemy.exc import IntegrityError

    from bot.store.db import upgrade
    from tests.test_import import SMALL, run_import, spec_of

    engine = make_engine(db_url)
    upgrade(engine, "0006")
    run_import(engine, spec_of(SMALL, tmp_path))
    count = "select count(*) from occurrence"
    with engine.connect() as conn:
        before = conn.execute(text(count)).scalar_one()
    assert before > 0
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text(count)).scalar_one() == before
    assert run_import(engine, spec_of(SMALL, tmp_path)).unchanged
    run_import(engine, spec_of(SMALL.replace("schedule: small", "schedule: other"), tmp_path))
    stray = (
        "INSERT INTO occurrence (task_id, schedule_id, kind, period_start, period_end, due_date,"
        " due_at, times_required, times_done, status, created_at, reminder_step,"
        " escalation_step, escalation_repeats) SELECT id, 'other', 'deadline', '2024-01-01',"
        " '2024-01-01', '2024-01-01', '2024-01-01 00:00:00', 1, 0, 'open',"
        " '2024-01-01 00:00:00', -1, -1, 0 FROM task WHERE schedule_id = 'small' LIMIT 1"
    )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(stray))
    engine.dispose()


def test_0010_keeps_each_payload_as_written_and_goes_back(db_url: str) -> None:
    """The outbox's payloads become JSON kept as text on PostgreSQL and the bundle key goes:
    a store with notifications keeps every payload exactly through the upgrade and back."""
    from alembic import command
    from sqlalchemy import inspect
    from sqlalchemy.exc import IntegrityError

    from bot.store.db import _alembic_config, upgrade
    from bot.store.models import Notification

    payload = {"title": '引号"和\\反斜杠', "items": [{"ref": "B8", "n": None}], "done": True}
    engine = make_engine(db_url)
    upgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO notification (id, key, kind, step, person_id, payload, not_before,"
                " state, created_at) VALUES (1, 'k1', 'reminder', 0, 1, :p, :t, 'pending', :t)"
            ).bindparams(bindparam("p", type_=Notification.__table__.c.payload.type)),
            {"p": payload, "t": datetime(2024, 6, 1, 1, 0)},
        )
    upgrade(engine)
    with Session(engine) as session:
        assert session.get(Notification, 1).payload == payload  # type: ignore[union-attr]
        session.add(
            Notification(
                id=2,
                key="k2",
                kind="reminder",
                person_id=1,
                bundle_id=99,
                payload=payload,
                not_before=local(2024, 6, 1, 9),
                created_at=local(2024, 6, 1, 9),
            )
        )
        session.commit()  # no bundle 99: the key is gone
        session.delete(session.get(Notification, 2))
        session.commit()
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
    kind = {c["name"]: c["type"] for c in inspect(engine).get_columns("notification")}
    if engine.dialect.name == "postgresql":
        assert type(kind["payload"]).__name__ == "JSONB"
    with Session(engine) as session:
        assert session.get(Notification, 1).payload == payload  # type: ignore[union-attr]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE notification SET bundle_id = 99 WHERE id = 1"))
    engine.dispose()
