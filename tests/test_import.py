"""Importing schedules into the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.materialise import materialise
from bot.schedule.format import ScheduleFile
from bot.schedule.importer import ImportDiff, import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import (
    CANCELLED,
    DONE,
    OPEN,
    AuditEvent,
    Occurrence,
    Person,
    Schedule,
    Task,
    UnitContact,
)
from tests.conftest import SCHEDULES, local

SEED = SCHEDULES / "fengdu-ndrc-2022.yaml"
T0 = local(2022, 5, 23, 9, 0)

SMALL = """\
schedule: small
title: 小清单
issued_on: 2022-05-23
people:
  邓清华: {title: 主任, chief: true}
  熊伟: {title: 副主任}
  张敏: {title: 科长}
units:
  能源科: {contacts: [张敏]}
admins: [张敏]
tasks:
  - {ref: "1", title: 召开会议, lead: [邓清华], responsible: [熊伟], units: [能源科], due: 2022-05-31}
  - {ref: "2", title: 编制清单, lead: [熊伟], units: [能源科], due: 2022-06-30}
  - {ref: "3", title: 每季度研究, lead: [邓清华], every: quarter, until: 2022-12-31}
  - {ref: "4", title: 每月报送, lead: [熊伟], units: [能源科], every: month, by: day 2, times: 2}
"""


def spec_of(text: str, tmp_path: Path) -> ScheduleFile:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_schedule(path)
    assert loaded.ok and loaded.spec is not None, [str(p) for p in loaded.problems]
    return loaded.spec


def run_import(engine: Engine, spec: ScheduleFile, now: datetime = T0) -> ImportDiff:
    with session_scope(engine) as session:
        return import_schedule(session, spec, now=now, horizon_days=62)


def count(engine: Engine, model: type, *where: object) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def occurrences(engine: Engine, ref: str, schedule: str = "small") -> list[Occurrence]:
    with Session(engine) as session:
        task = session.exec(select(Task).where(Task.schedule_id == schedule, Task.ref == ref)).one()
        return list(
            session.exec(
                select(Occurrence)
                .where(Occurrence.task_id == task.id)
                .order_by(Occurrence.period_start)
            )
        )


def test_seed_schedule_imports_and_reimport_changes_nothing(engine: Engine) -> None:
    spec = load_schedule(SEED).spec
    assert spec is not None
    first = run_import(engine, spec)
    assert first.created and len(first.tasks_added) == len(spec.tasks)
    assert "邓清华" in first.people_added and "能源科" in first.units_added
    assert first.occurrences.added > 50
    rows = count(engine, Occurrence)
    audits = count(engine, AuditEvent)
    second = run_import(engine, spec, now=local(2022, 5, 24, 9, 0))
    assert second.unchanged and not second.tasks_added and not second.tasks_changed
    assert (count(engine, Occurrence), count(engine, AuditEvent)) == (rows, audits)
    # every deadline task has exactly one occurrence, due at 18:00 Shanghai on its due day
    with Session(engine) as session:
        task = session.exec(
            select(Task).where(Task.schedule_id == spec.schedule, Task.ref == "1")
        ).one()
        [occ] = session.exec(select(Occurrence).where(Occurrence.task_id == task.id)).all()
    assert occ.due_date == date(2022, 5, 31)
    assert occ.due_at == local(2022, 5, 31, 18, 0)
    assert occ.due_at.tzinfo is not None


def test_times_are_utc_aware_on_read(engine: Engine, tmp_path: Path) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    [occ] = occurrences(engine, "1")
    assert occ.due_at.utcoffset() is not None and occ.due_at.utcoffset().total_seconds() == 0
    assert occ.due_at.hour == 10  # 18:00 Asia/Shanghai is 10:00 UTC


def test_small_schedule_occurrences(engine: Engine, tmp_path: Path) -> None:
    diff = run_import(engine, spec_of(SMALL, tmp_path))
    assert diff.tasks_added == ["1", "2", "3", "4"]
    assert [o.due_date for o in occurrences(engine, "3")] == [date(2022, 6, 30)]  # horizon: 62 days
    monthly = occurrences(engine, "4")
    assert [o.due_date for o in monthly] == [date(2022, 6, 2), date(2022, 7, 2)]
    assert {o.times_required for o in monthly} == {2}


def test_materialise_is_idempotent_and_rolls_the_horizon(engine: Engine, tmp_path: Path) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    before = count(engine, Occurrence)
    for now in (T0, T0):
        with session_scope(engine) as session:
            schedule = session.get(Schedule, "small")
            assert schedule is not None
            counts = materialise(session, schedule, now=now, horizon_days=62)
            assert (counts.added, counts.updated, counts.cancelled) == (0, 0, 0)
    assert count(engine, Occurrence) == before
    with session_scope(engine) as session:
        schedule = session.get(Schedule, "small")
        assert schedule is not None
        counts = materialise(session, schedule, now=local(2022, 9, 1, 2, 0), horizon_days=62)
    assert counts.added >= 3  # quarters and months that came into the horizon
    assert [o.due_date for o in occurrences(engine, "3")] == [date(2022, 6, 30), date(2022, 9, 30)]


def test_changed_deadline_replans_open_and_keeps_done(engine: Engine, tmp_path: Path) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    with session_scope(engine) as session:  # task 1 is done; task 2 still open
        [occ] = session.exec(select(Occurrence).join(Task).where(Task.ref == "1")).all()
        occ.status, occ.completed_at, occ.times_done = DONE, local(2022, 5, 30, 10, 0), 1
        session.add(occ)
    changed = SMALL.replace("due: 2022-05-31}", "due: 2022-06-15}").replace(
        "due: 2022-06-30}", "due: 2022-07-15}"
    )
    diff = run_import(engine, spec_of(changed, tmp_path), now=local(2022, 5, 31, 9, 0))
    assert [ref for ref, _ in diff.tasks_changed] == ["1", "2"]
    assert all("due" in fields for _, fields in diff.tasks_changed)
    [done] = occurrences(engine, "1")
    assert (done.status, done.due_date) == (DONE, date(2022, 5, 31))  # history kept as it was
    [moved] = occurrences(engine, "2")
    assert (moved.status, moved.due_date, moved.due_at) == (
        OPEN,
        date(2022, 7, 15),
        local(2022, 7, 15, 18, 0),
    )
    assert count(engine, AuditEvent, AuditEvent.action == "task_changed") == 2


def test_changed_recurrence_cancels_future_periods_and_adds_new_ones(
    engine: Engine, tmp_path: Path
) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    changed = SMALL.replace(
        "every: month, by: day 2, times: 2", "every: month, by: day 10, times: 1"
    )
    diff = run_import(engine, spec_of(changed, tmp_path), now=local(2022, 5, 24, 9, 0))
    assert diff.tasks_changed == [("4", ["times", "by"])]
    rows = occurrences(engine, "4")
    assert [(o.due_date, o.times_required, o.status) for o in rows] == [
        (date(2022, 6, 10), 1, OPEN),
        (date(2022, 7, 10), 1, OPEN),
    ]


def test_removed_task_cancels_open_occurrences_with_audit_and_keeps_history(
    engine: Engine, tmp_path: Path
) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    with session_scope(engine) as session:  # one monthly period was done before removal
        first = session.exec(
            select(Occurrence).join(Task).where(Task.ref == "4").order_by(Occurrence.due_date)
        ).first()
        assert first is not None
        first.status, first.times_done = DONE, 2
        session.add(first)
    removed = "\n".join(line for line in SMALL.splitlines() if 'ref: "4"' not in line) + "\n"
    diff = run_import(engine, spec_of(removed, tmp_path), now=local(2022, 5, 25, 9, 0))
    assert diff.tasks_removed == ["4"] and diff.occurrences.cancelled == 1
    rows = occurrences(engine, "4")
    assert [o.status for o in rows] == [DONE, CANCELLED]
    assert count(engine, AuditEvent, AuditEvent.action == "occurrence_cancelled") == 1
    assert count(engine, AuditEvent, AuditEvent.action == "task_removed") == 1
    with Session(engine) as session:
        task = session.exec(select(Task).where(Task.ref == "4")).one()
        assert task.active is False
    # putting it back reactivates the task; its history stays
    again = run_import(engine, spec_of(SMALL, tmp_path), now=local(2022, 5, 26, 9, 0))
    assert again.tasks_changed == [("4", ["active"])]
    assert [o.status for o in occurrences(engine, "4")] == [DONE, OPEN]


def test_people_and_units_changes_are_reported(engine: Engine, tmp_path: Path) -> None:
    run_import(engine, spec_of(SMALL, tmp_path))
    changed = SMALL.replace(
        "  张敏: {title: 科长}\n", "  张敏: {title: 科长}\n  李娜: {title: 科员}\n"
    ).replace(
        "能源科: {contacts: [张敏]}", "能源科: {contacts: [李娜, 张敏]}\n  办公室: {contacts: []}"
    )
    diff = run_import(engine, spec_of(changed, tmp_path), now=local(2022, 5, 24, 9, 0))
    assert (
        diff.people_added == ["李娜"]
        and diff.units_added == ["办公室"]
        and diff.units_changed == ["能源科"]
    )
    with Session(engine) as session:
        contacts = session.exec(select(UnitContact).order_by(UnitContact.position)).all()
        names = [session.get(Person, c.person_id).name for c in contacts]  # type: ignore[union-attr]
    assert names == ["李娜", "张敏"]


def test_a_failing_import_leaves_nothing_behind(engine: Engine, tmp_path: Path) -> None:
    spec = spec_of(SMALL, tmp_path)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        import_schedule(session, spec, now=T0, horizon_days=62)
        raise RuntimeError("crash after the import, before commit")
    assert (
        count(engine, Schedule) == 0 and count(engine, Task) == 0 and count(engine, Occurrence) == 0
    )


def test_cli_import_prints_the_diff_and_rejects_a_bad_file(tmp_path: Path, db_url: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "bot", "import", "--now", "2022-05-23T09:00"]
    out = subprocess.run(
        [*cmd, str(SEED)], capture_output=True, text=True, env=env, check=True
    ).stdout
    spec = load_schedule(SEED).spec
    assert spec is not None
    assert "已新建清单 fengdu-ndrc-2022" in out and f"新增任务 {len(spec.tasks)} 项" in out
    again = subprocess.run(
        [*cmd, str(SEED)], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "未做任何改动" in again
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SEED.read_text(encoding="utf-8")
        .replace("schedule: fengdu-ndrc-2022", "schedule: other-list")
        .replace("lead: [邓清华]", "lead: [邓青华]", 1),
        encoding="utf-8",
    )
    result = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 1 and "是不是“邓清华”" in result.stderr
    from bot.store.db import make_engine

    engine = make_engine(db_url)
    assert count(engine, Schedule, Schedule.id == "other-list") == 0
    engine.dispose()
