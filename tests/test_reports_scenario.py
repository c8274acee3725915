"""The seeded scenario the report tests share, built on the real fengdu-ndrc-2022 list.

Imported on 2022-05-23 09:00 (Asia/Shanghai); then, as officials would have answered:
- task 1 (due 5-31) done on 5-30 with a note and two evidence files;
- task 4 (due 5-31) still open, with a progress note on 6-10: overdue;
- task 6 (due 5-31) cancelled by an admin on 6-01;
- task 13.1 (每月至少2次): May done 2/2, June done 1/2;
- task 7.3 (每月, 邓清华): May done, so its first open occurrence is June;
- task 18.1 (due 6-30): extension to 7-15 requested and approved.
Every answer writes an AuditEvent, as the conversation module will.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.materialise import cancel, schedule_time
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import (
    DONE,
    AuditEvent,
    Evidence,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
)
from tests.conftest import SCHEDULES, local

SCHEDULE = "fengdu-ndrc-2022"
IMPORTED_AT = local(2022, 5, 23, 9, 0)
AS_OF = local(2022, 6, 20, 10, 0)  # a Monday, working day


def task_count() -> int:
    """How many tasks the real list holds (it is still being reviewed, so never a constant)."""
    loaded = load_schedule(SCHEDULES / f"{SCHEDULE}.yaml")
    assert loaded.spec is not None
    return len(loaded.spec.tasks)


@dataclass(frozen=True)
class Seeded:
    people: dict[str, int]
    occurrences: dict[tuple[str, date], int]  # (ref, period_start) -> id


def import_real_schedule(session: Session, path: Path = SCHEDULES / f"{SCHEDULE}.yaml") -> None:
    loaded = load_schedule(path)
    assert loaded.ok and loaded.spec is not None, loaded.problems
    import_schedule(session, loaded.spec, now=IMPORTED_AT, horizon_days=62, actor="cli")


def _occ(session: Session, ref: str, period_start: date | None = None) -> Occurrence:
    task = session.exec(select(Task).where(Task.schedule_id == SCHEDULE, Task.ref == ref)).one()
    rows = session.exec(
        select(Occurrence).where(Occurrence.task_id == task.id).order_by(Occurrence.period_start)
    ).all()
    if period_start is None:
        assert len(rows) >= 1
        return rows[0]
    [row] = [r for r in rows if r.period_start == period_start]
    return row


def _person(session: Session, name: str) -> Person:
    return session.exec(
        select(Person).where(Person.schedule_id == SCHEDULE, Person.name == name)
    ).one()


def _reply(
    session: Session,
    occ: Occurrence,
    person: Person,
    kind: str,
    at: datetime,
    *,
    note: str | None = None,
    evidence: int = 0,
    percent: int | None = None,
    requested: date | None = None,
    action: str | None = None,
) -> Reply:
    assert occ.id is not None and person.id is not None
    reply = Reply(
        occurrence_id=occ.id,
        person_id=person.id,
        kind=kind,
        note=note,
        percent=percent,
        requested_date=requested,
        created_at=at,
    )
    session.add(reply)
    session.flush()
    assert reply.id is not None
    for n in range(evidence):
        session.add(
            Evidence(
                reply_id=reply.id,
                kind="photo",
                file_id=f"file-{reply.id}-{n}",
                file_name=f"现场照片{n + 1}.jpg",
                created_at=at,
            )
        )
    session.add(
        AuditEvent(
            at=at,
            actor=f"person:{person.id}",
            action=action or f"reply_{kind}",
            schedule_id=occ.schedule_id,
            task_id=occ.task_id,
            occurrence_id=occ.id,
            person_id=person.id,
            detail={"kind": kind, "note": note},
        )
    )
    return reply


def _done(
    session: Session, occ: Occurrence, person: Person, at: datetime, note: str, evidence: int = 0
) -> None:
    _reply(session, occ, person, "done", at, note=note, evidence=evidence)
    occ.times_done += 1
    if occ.times_done >= occ.times_required:
        occ.status, occ.completed_at = DONE, at
    session.add(occ)


def seed_scenario(engine: Engine) -> Seeded:
    """Import the real list and play the scenario; returns ids the tests look for."""
    with session_scope(engine) as session:
        import_real_schedule(session)
    with session_scope(engine) as session:
        schedule = session.get(Schedule, SCHEDULE)
        assert schedule is not None
        st = schedule_time(schedule)
        office = _person(session, "办公室联络员")
        energy = _person(session, "能源科联络员")
        xiong = _person(session, "熊伟")
        deng = _person(session, "邓清华")

        _done(
            session,
            _occ(session, "1"),
            office,
            local(2022, 5, 30, 15, 0),
            "已建立“党政同责、一岗双责”责任制并印发通知",
            evidence=2,
        )
        _reply(
            session,
            _occ(session, "4"),
            energy,
            "progress",
            local(2022, 6, 10, 16, 30),
            note="工作方案初稿已完成，待党组会审议",
            percent=60,
        )
        cancel(session, _occ(session, "6"), "admin", now=local(2022, 6, 1, 7, 30), actor="cli")

        may, june = date(2022, 5, 23), date(2022, 6, 1)
        for n in range(2):
            _done(
                session,
                _occ(session, "13.1", may),
                xiong,
                local(2022, 5, 26 + n, 11, 0),
                f"检查挂牌企业第{n + 1}家",
            )
        _done(
            session,
            _occ(session, "13.1", june),
            xiong,
            local(2022, 6, 15, 11, 0),
            "6月检查挂牌企业1家",
            evidence=1,
        )
        _done(session, _occ(session, "7.3", may), deng, local(2022, 5, 31, 10, 0), "5月执法检查")

        late = _occ(session, "18.1")
        request = _reply(
            session,
            late,
            energy,
            "extension",
            local(2022, 6, 16, 9, 0),
            note="风电项目停工，申请延期",
            requested=date(2022, 7, 15),
            action="extension_requested",
        )
        request.decision, request.decided_by_id = "approved", xiong.id
        request.decided_at = local(2022, 6, 16, 14, 0)
        session.add(request)
        late.extended_to = date(2022, 7, 15)
        late.due_at = st.due_at(late.extended_to)
        session.add(late)
        session.add(
            AuditEvent(
                at=local(2022, 6, 16, 14, 0),
                actor=f"person:{xiong.id}",
                action="extension_approved",
                schedule_id=SCHEDULE,
                task_id=late.task_id,
                occurrence_id=late.id,
                detail={"extended_to": "2022-07-15"},
            )
        )
        people = {p.name: p.id for p in session.exec(select(Person)) if p.id is not None}
        occurrences = {}
        for occ, ref in session.exec(
            select(Occurrence, Task.ref).join(Task, Task.id == Occurrence.task_id)  # type: ignore[arg-type]
        ):
            assert occ.id is not None
            occurrences[(ref, occ.period_start)] = occ.id
    return Seeded(people, occurrences)


SECOND_LIST = """\
schedule: demo-town-2022
title: 示范镇安全生产责任清单
issued_by: 示范镇人民政府
issued_on: 2022-05-23
people:
  王明: {title: 镇长, chief: true}
units:
  安办: {contacts: [王明]}
admins: [王明]
tasks:
  - ref: "1"
    title: 制定年度安全生产工作要点
    lead: [王明]
    units: [安办]
    due: 2022-06-30
  - ref: "2"
    title: 建立安全生产举报奖励长效机制
    lead: [王明]
    units: [安办]
    ongoing: true
"""


def import_second_list(engine: Engine, tmp_path: Path) -> None:
    """A second, small list, for the several-schedules layouts."""
    path = tmp_path / "demo-town-2022.yaml"
    path.write_text(SECOND_LIST, encoding="utf-8")
    with session_scope(engine) as session:
        import_real_schedule(session, path)


def test_scenario_is_seeded(engine: Engine) -> None:
    """Guard the fixture itself: the later assertions mean nothing if the seed drifts."""
    seeded = seed_scenario(engine)
    with session_scope(engine) as session:
        assert (
            len(session.exec(select(Task).where(Task.schedule_id == SCHEDULE)).all())
            == task_count()
        )
        june = session.get(Occurrence, seeded.occurrences[("13.1", date(2022, 6, 1))])
        assert june is not None and (june.times_done, june.times_required) == (1, 2)
        assert session.get(Occurrence, seeded.occurrences[("6", date(2022, 5, 23))]) is not None
