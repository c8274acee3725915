"""The bulk import writes the same store as row-by-row planning would: occurrence and member
tables after an import and after a re-import with moved deadlines, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, insert, text
from sqlmodel import col, select

from bot.materialise import schedule_time, task_timing
from bot.occurrences import plan
from bot.outbox import notification_row
from bot.store.db import (
    _COPY_FROM,
    bulk_insert,
    bulk_raise,
    bulk_update,
    open_store,
    session_scope,
)
from bot.store.models import AuditEvent, Notification, Occurrence, Schedule, Task
from tests.conftest import fresh_database, local
from tests.test_import import run_import, spec_of

FILE = """\
schedule: bulk
title: 批量清单
issued_on: 2024-06-01
people:
  甲: {title: 主任, chief: true}
  乙: {title: 科长}
units:
  一科: {contacts: [乙]}
admins: [乙]
tasks:
  - {ref: "1", title: 每日巡查, lead: [甲], units: [一科], every: day}
  - {ref: "2", title: 工作日值班, lead: [乙], responsible: [甲], every: workday}
  - {ref: "3", title: 整改甲, lead: [甲], units: [一科], due: 2024-06-20}
  - {ref: "4", title: 整改乙, lead: [乙], due: 2024-06-25}
"""
NOW = local(2024, 6, 3, 9, 0)


def table(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        # SQLite gives dates as text, PostgreSQL as dates: compare their ISO spelling
        return [tuple(_iso(v) for v in r) for r in conn.execute(text(sql))]


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def occurrences(engine: Engine) -> list[tuple[object, ...]]:
    return table(
        engine,
        "select o.id, t.ref, o.kind, o.period_start, o.period_end, o.due_date, o.status "
        "from occurrence o join task t on t.id = o.task_id order by t.ref, o.period_start",
    )


def members(engine: Engine) -> list[tuple[object, ...]]:
    return table(
        engine,
        "select m.id, t.ref, m.role, p.name, u.name, m.position from taskmember m "
        "join task t on t.id = m.task_id left join person p on p.id = m.person_id "
        "left join unit u on u.id = m.unit_id order by t.ref, m.position",
    )


def expected(engine: Engine) -> list[tuple[object, ...]]:
    """The pure plan, task by task, for the import's window (what one-by-one rows gave)."""
    with session_scope(engine) as session:
        schedule = session.get(Schedule, "bulk")
        assert schedule is not None
        st = schedule_time(schedule)
        start = st.local_date(NOW)
        rows = []
        for task in sorted(session.exec(select(Task)).all(), key=lambda t: t.ref):
            for p in plan(task_timing(task, schedule), st.calendar, start, start + timedelta(62)):
                dates = map(_iso, (p.period_start, p.period_end, p.due_date))
                rows.append((task.ref, p.kind, *dates, "open"))
    return rows


def test_import_and_reimport_with_moved_deadlines_write_the_expected_tables(
    engine: Engine, tmp_path: Path
) -> None:
    diff = run_import(engine, spec_of(FILE, tmp_path), now=NOW)
    first = occurrences(engine)
    assert [r[1:] for r in first] == expected(engine)
    assert diff.occurrences.added == len(first) == 63 + 44 + 2  # 63 days, 44 workdays
    assert [r[1:] for r in members(engine)] == [
        ("1", "lead", "甲", None, 0),
        ("1", "unit", None, "一科", 1),
        ("2", "lead", "乙", None, 0),
        ("2", "responsible", "甲", None, 1),
        ("3", "lead", "甲", None, 0),
        ("3", "unit", None, "一科", 1),
        ("4", "lead", "乙", None, 0),
    ]
    member_rows = members(engine)

    moved = FILE.replace("due: 2024-06-20", "due: 2024-06-27").replace(
        "lead: [乙], due: 2024-06-25", "lead: [甲], due: 2024-06-25"
    )
    again = run_import(engine, spec_of(moved, tmp_path), now=local(2024, 6, 3, 15, 0))
    assert (again.occurrences.added, again.occurrences.updated) == (0, 1)
    after = occurrences(engine)
    # the moved deadline keeps its row (same id), with the new due day; nothing else changed
    changed = [(b, a) for b, a in zip(first, after, strict=True) if b != a]
    assert changed == [(first[-2], (*first[-2][:4], "2024-06-27", "2024-06-27", "open"))]
    # task 4's lead changed: its members are replaced, every other task's rows are untouched
    after_members = members(engine)
    assert [m for m in after_members if m[1] != "4"] == [m for m in member_rows if m[1] != "4"]
    assert [m[1:] for m in after_members if m[1] == "4"] == [("4", "lead", "甲", None, 0)]
    # and a third import of the same file writes nothing
    assert run_import(engine, spec_of(moved, tmp_path), now=local(2024, 6, 3, 15, 0)).unchanged
    assert occurrences(engine) == after


def test_a_large_bulk_insert_skips_rows_that_exist_and_counts_the_new_ones(
    engine: Engine, tmp_path: Path
) -> None:
    """Enough rows for PostgreSQL's COPY path (bot.store.db._COPY_FROM): a re-insert of every
    row after half were deleted adds back exactly that half, whatever the path."""
    daily = "".join(
        f'  - {{ref: "{n}", title: 巡查{n}, lead: [甲], every: day}}\n' for n in range(5, 30)
    )
    diff = run_import(engine, spec_of(FILE + daily, tmp_path), now=NOW)
    full = occurrences(engine)
    assert diff.occurrences.added == len(full) == 109 + 25 * 63 > _COPY_FROM
    assert [r[1:] for r in full] == expected(engine)
    columns = [c.name for c in Occurrence.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        rows = [
            dict(r._mapping)
            for r in session.execute(select(*(col(getattr(Occurrence, c)) for c in columns)))
        ]
        deleted = session.execute(text("delete from occurrence where id % 2 = 0")).rowcount
    assert 0 < deleted < len(rows)
    with session_scope(engine) as session:
        assert (
            bulk_insert(session, Occurrence, rows, on_conflict=["task_id", "period_start"])
            == deleted
        )
    assert [r[1:] for r in occurrences(engine)] == [r[1:] for r in full]


def test_an_ongoing_tasks_own_check_period_is_planned(engine: Engine, tmp_path: Path) -> None:
    """The planner reads a task's ``ongoing_check`` from its stored policy (in SQL, without
    decoding the policy): a quarterly check is planned by quarter, as the ORM's view says."""
    ongoing = (
        '  - {ref: "9", title: 长期坚持, lead: [甲], ongoing: true,'
        " policy: {ongoing_check: quarter}}\n"
    )
    run_import(engine, spec_of(FILE + ongoing, tmp_path), now=NOW)
    rows = [r[1:] for r in occurrences(engine)]
    assert rows == expected(engine)
    # the 62-day window from 06-03 holds one quarter end (monthly checks would be two)
    assert [r[3] for r in rows if r[0] == "9"] == ["2024-06-30"]


def test_a_large_bulk_insert_from_a_generator_keeps_every_value_as_given(engine: Engine) -> None:
    """Rows yielded by a generator, enough for PostgreSQL's COPY path (each distinct value
    dumped once): text holding tabs, line ends, backslashes or \\N, NULLs, shared and distinct
    JSON documents and instants in another offset come back as given, on both backends."""
    shared = {"ref": "共享", "fields": ["due"]}
    odd = ["a\tb", "line\nnext", "back\\slash", "cr\rlf", "\\N", "\\.", "", "普通"]
    at = local(2024, 6, 3, 9, 0)

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(_COPY_FROM + 7):
            yield {
                "at": at + timedelta(seconds=n % 5),
                "actor": odd[n % len(odd)],
                "action": "bulk_test",
                "schedule_id": None if n % 3 else f"s{n}",
                "task_id": n,
                "detail": shared if n % 2 else {"text": odd[n % len(odd)], "n": n},
            }

    with session_scope(engine) as session:
        assert bulk_insert(session, AuditEvent, rows(), on_conflict=None) == _COPY_FROM + 7
    with session_scope(engine) as session:
        stored = session.exec(
            select(AuditEvent).where(AuditEvent.action == "bulk_test").order_by(col(AuditEvent.id))
        ).all()
        got = [(e.at, e.actor, e.schedule_id, e.task_id, e.detail) for e in stored]
    assert got == [
        (r["at"], r["actor"], r["schedule_id"], r["task_id"], r["detail"]) for r in rows()
    ]


def test_a_bulk_update_keeps_every_value_as_given(engine: Engine) -> None:
    """The update of many rows at once (PostgreSQL: one statement over arrays sent in the
    binary format) stores quotes, backslashes and braces inside text and JSON as given, a
    column of nothing but NULLs, big and negative numbers and instants in another offset."""
    odd = ['say "hi"', "back\\slash", "{brace,comma}", "NULL", "", "普通", "a\tb\nc"]
    at = local(2024, 6, 3, 9, 0)
    with session_scope(engine) as session:
        bulk_insert(
            session,
            AuditEvent,
            [{"at": at, "actor": "x", "action": "bulk_update_test"} for _ in range(50)],
            on_conflict=None,
        )
    with session_scope(engine) as session:
        ids = session.exec(
            select(AuditEvent.id)
            .where(AuditEvent.action == "bulk_update_test")
            .order_by(col(AuditEvent.id))
        ).all()
        changes = [
            {
                "id": id_,
                "at": at + timedelta(minutes=n),
                "actor": odd[n % len(odd)],
                "schedule_id": None,
                "task_id": (-1) ** n * (2**31 - 1 - n) if n % 4 else None,
                "detail": {"say": odd[n % len(odd)], "list": ['"', "\\", n], "n": None},
            }
            for n, id_ in enumerate(ids)
        ]
        bulk_update(session, AuditEvent, changes)
    with session_scope(engine) as session:
        stored = session.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "bulk_update_test")
            .order_by(col(AuditEvent.id))
        ).all()
        got = [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "schedule_id": e.schedule_id,
                "task_id": e.task_id,
                "detail": e.detail,
            }
            for e in stored
        ]
    assert got == changes


def test_a_key_taken_by_a_concurrent_writer_during_a_bulk_insert_is_skipped(
    tmp_path: Path,
) -> None:
    """PostgreSQL's bulk insert COPYs rows straight in once it has found which keys exist; a
    key another transaction writes meanwhile (invisible to that search) makes the COPY wait,
    then fail when the other commits: the insert falls back and skips that key alone."""
    with fresh_database("postgresql", tmp_path) as url:  # SQLite has one writer at a time
        engine = open_store(url)
        try:
            _insert_beside_a_concurrent_writer(engine)
        finally:
            engine.dispose()


def _insert_beside_a_concurrent_writer(engine: Engine) -> None:
    at = local(2024, 6, 3, 9, 0)

    def row(key: str) -> dict[str, Any]:
        return notification_row(
            key=key, kind="reminder", person_id=1, not_before=at, now=at, schedule_id="s"
        )

    rows = [row(f"k{n}") for n in range(_COPY_FROM + 5)]
    other = engine.connect()
    other.execute(insert(Notification).values(row("k7")))  # written, not yet committed
    result: dict[str, int] = {}

    def insert_all() -> None:
        with session_scope(engine) as session:
            result["new"] = bulk_insert(session, Notification, rows, on_conflict=["key"])

    writer = threading.Thread(target=insert_all)
    writer.start()
    deadline = time.monotonic() + 10
    with engine.connect() as watch:  # until the COPY waits for the other transaction
        while not watch.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.01)
    other.commit()
    other.close()
    writer.join(10)
    assert result == {"new": len(rows) - 1}
    with session_scope(engine) as session:
        keys = session.exec(select(Notification.key)).all()
    assert sorted(keys) == sorted(r["key"] for r in rows)


def test_a_bulk_insert_skips_what_on_conflict_would_skip_and_no_null_key(
    engine: Engine,
) -> None:
    """Enough rows at hand for PostgreSQL's straight COPY: a key already stored and a key
    given twice are skipped (the first of a key wins), while rows whose key has a NULL are
    all kept, as a unique index treats NULLs as distinct; SQLite's ON CONFLICT agrees."""
    table = sa.Table(
        "bulk_keys",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("a", sa.Integer, nullable=True),
        sa.Column("b", sa.String(20), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.UniqueConstraint("a", "b"),
    )
    table.create(engine)
    model = type("BulkKeys", (), {"__table__": table})
    with session_scope(engine) as session:
        bulk_insert(session, model, [{"a": 0, "b": "x", "label": "stored"}], on_conflict=None)
    rows = [{"a": n, "b": "x", "label": "first"} for n in range(_COPY_FROM)]
    rows += [{"a": 5, "b": "x", "label": "again"}, {"a": None, "b": "x", "label": "null"}]
    rows += [{"a": None, "b": "x", "label": "null"}]
    with session_scope(engine) as session:
        assert bulk_insert(session, model, rows, on_conflict=["a", "b"]) == _COPY_FROM - 1 + 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.a, table.c.label).order_by(table.c.id)).all()
    assert [tuple(r) for r in stored] == [(0, "stored")] + [
        (n, "first") for n in range(1, _COPY_FROM)
    ] + [(None, "null"), (None, "null")]


def test_a_bulk_raise_lengthens_only_what_it_should(engine: Engine) -> None:
    """Raising an expiry for many rows at once: a later instant wins, an earlier one does
    not, no limit (None) always wins, and a row that never expires or fails the filter is
    left alone -- the same on both backends."""
    t1, t2 = local(2024, 6, 3, 9, 0), local(2024, 6, 4, 9, 0)
    stored = {"later": t1, "earlier": t2, "forever": t1, "never": None, "other": t1, "kept": t1}
    raised = {"later": t2, "earlier": t1, "forever": None, "never": t2, "other": t2}
    with session_scope(engine) as session:
        bulk_insert(
            session,
            Notification,
            [
                notification_row(
                    key=name,
                    kind="reminder",
                    person_id=1,
                    not_before=t1,
                    now=t1,
                    schedule_id=None,
                )
                | {"expires_at": at, "state": "bundled" if name == "other" else "pending"}
                for name, at in stored.items()
            ],
            on_conflict=["key"],
        )
    with session_scope(engine) as session:
        ids = dict(session.exec(select(Notification.key, Notification.id)).all())
        bulk_raise(
            session,
            Notification,
            [{"id": ids[name], "expires_at": at} for name, at in raised.items()],
            key=("id",),
            column="expires_at",
            where={"state": "pending"},
        )
    with session_scope(engine) as session:
        got = dict(session.exec(select(Notification.key, Notification.expires_at)).all())
    assert got == {
        "later": t2,
        "earlier": t2,
        "forever": None,
        "never": None,
        "other": t1,
        "kept": t1,
    }
