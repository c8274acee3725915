"""The store itself: migrations, SQLite WAL, UTC instants."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
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
