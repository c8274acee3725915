"""A year of the real seed-000 schedule on a simulated clock: exactly who hears what, and when.

Pinned cases cross a holiday (Dragon Boat 2022-06-03, New Year 2023-01-02), a 调休
make-up Saturday (2022-10-08, 2023-01-28) and a Saturday due date (2022-12-31).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from bot import replies
from bot.adapters.base import RecordingAdapter
from bot.clock import SimulatedClock
from bot.materialise import schedule_time
from bot.roster import Roster
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.simulation import Timeline, run
from bot.store.db import open_store, session_scope
from bot.store.models import DONE, Notification, Occurrence, Person, Schedule, Task
from tests.conftest import SCHEDULES, fresh_database, local
from tests.fakes.outbox import named_worker

TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Sent:
    when: str
    to: str
    kind: str
    level: str | None
    ref: str | None


@dataclass
class Year:
    sent: list[Sent]
    engine_url: str
    until: datetime


def _occurrence(session: Session, ref: str) -> Occurrence:
    task = session.exec(select(Task).where(Task.ref == ref)).one()
    return session.exec(select(Occurrence).where(Occurrence.task_id == task.id)).one()


def _person(session: Session, name: str) -> int:
    person = session.exec(select(Person).where(Person.name == name)).one()
    assert person.id is not None
    return person.id


# The full year runs on SQLite; PostgreSQL runs to late October (Dragon Boat, the National Day
# 调休 Saturday, the chief's repeats), which keeps the suite inside its time budget.
SPANS = {"sqlite": local(2023, 1, 31, 18, 0), "postgresql": local(2022, 10, 28, 18, 0)}


@pytest.fixture(scope="module", params=list(SPANS))
def year(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Year]:
    with fresh_database(request.param, tmp_path_factory.mktemp("year")) as url:
        db = open_store(url)
        clock = SimulatedClock(local(2022, 5, 23, 8, 0))
        spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
        assert spec is not None
        with session_scope(db) as session:
            import_schedule(session, spec, now=clock.now(), horizon_days=62)
            schedule = session.get(Schedule, spec.schedule)
            assert schedule is not None
            st = schedule_time(schedule)

        def finish_task_4(now: datetime) -> None:
            with session_scope(db) as session:
                occ = _occurrence(session, "4")
                assert occ.id is not None
                replies.complete(
                    session,
                    occurrence_id=occ.id,
                    person_id=_person(session, "能源科联络员"),
                    now=now,
                )

        def diligent_routine(day: date) -> None:
            """Officials do their daily and weekly duties before being reminded."""

            def event(now: datetime) -> None:
                with session_scope(db) as session:
                    rows = session.exec(
                        select(Occurrence, Task)
                        .join(Task)
                        .where(Occurrence.status == "open", Occurrence.period_start <= day)
                        .where(Task.every.in_(("day", "workday", "week")))  # type: ignore[union-attr]
                    ).all()
                    roster = Roster.load(session, spec.schedule)
                    for occ, task in rows:
                        assert occ.id is not None and task.id is not None
                        who = roster.assignees(task.id)[0]
                        replies.complete(session, occurrence_id=occ.id, person_id=who, now=now)

            timeline.at(datetime.combine(day, datetime.min.time(), TZ).replace(hour=8), event)

        timeline = Timeline()
        timeline.at(local(2022, 6, 7, 10, 0), finish_task_4)
        worker = named_worker(db, RecordingAdapter(), clock)
        asyncio.run(
            run(
                worker,
                clock,
                st,
                until=SPANS[request.param],
                timeline=timeline,
                every=timedelta(hours=10),
                on_day=diligent_routine,
            )
        )
        with Session(db) as session:
            rows = session.exec(
                select(Notification, Person)
                .join(Person, col(Person.id) == Notification.person_id)
                .where(Notification.state == "sent")
            ).all()
            sent = [
                Sent(
                    n.sent_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if n.sent_at else "",
                    p.name,
                    n.kind,
                    n.level,
                    (n.payload or {}).get("ref"),
                )
                for n, p in rows
            ]
        db.dispose()
        yield Year(sorted(sent, key=lambda s: (s.when, s.kind, s.to)), url, SPANS[request.param])


def of(year: Year, ref: str) -> list[tuple[str, str, str, str | None]]:
    return [
        (s.when, s.to, s.kind, s.level) for s in year.sent if s.ref == ref and s.kind != "digest"
    ]


def test_task_4_reminded_escalated_across_dragon_boat_and_completed(year: Year) -> None:
    assert of(year, "4") == [
        # -7 working days (05-20) falls before the list was issued (05-23): not sent
        ("2022-05-26 08:30", "熊伟", "reminder", "blue"),
        ("2022-05-26 08:30", "能源科联络员", "reminder", "blue"),
        ("2022-05-30 08:30", "熊伟", "reminder", "blue"),
        ("2022-05-30 08:30", "能源科联络员", "reminder", "blue"),
        ("2022-05-31 08:30", "熊伟", "reminder", "blue"),
        ("2022-05-31 08:30", "能源科联络员", "reminder", "blue"),
        ("2022-06-01 08:30", "熊伟", "escalation", "yellow"),
        ("2022-06-01 08:30", "能源科联络员", "escalation", "yellow"),
        (
            "2022-06-06 08:30",
            "邓清华",
            "escalation",
            "yellow",
        ),  # 3rd working day: 06-03 is a holiday
        ("2022-06-07 10:00", "办公室联络员", "completed", None),  # partner unit's contact informed
        ("2022-06-07 10:00", "邓清华", "completed", None),  # the lead informed; no red step follows
    ]


def test_task_24_escalates_on_a_make_up_saturday_and_repeats_to_the_chief(year: Year) -> None:
    messages = of(year, "24")
    assert messages[:7] == [
        ("2022-09-21 08:30", "公管科联络员", "reminder", "blue"),
        ("2022-09-27 08:30", "公管科联络员", "reminder", "blue"),
        ("2022-09-29 08:30", "公管科联络员", "reminder", "blue"),
        ("2022-09-30 08:30", "公管科联络员", "reminder", "blue"),
        ("2022-10-08 08:30", "公管科联络员", "escalation", "yellow"),  # Saturday, a 调休 workday
        ("2022-10-10 08:30", "熊伟", "escalation", "yellow"),  # Sunday 10-09 was a workday too
        ("2022-10-12 08:30", "邓清华", "escalation", "red"),
    ]
    repeats = [m[0][:10] for m in messages[7:]]
    assert repeats[:2] == ["2022-10-19", "2022-10-26"]
    if year.until >= local(2022, 11, 30):
        assert repeats[2:4] == ["2022-11-02", "2022-11-09"]
    assert all(m[1:] == ("邓清华", "escalation", "red") for m in messages[7:])
    assert len(repeats) == len(set(repeats))


def test_task_2_due_on_a_saturday_escalates_after_new_year_and_repeats_on_a_make_up_day(
    year: Year,
) -> None:
    messages = of(year, "2")
    if year.until < local(2022, 12, 21):  # this backend's shorter run (see SPANS)
        assert messages == []  # nothing before the first reminder, -7 working days from 12-30
        return
    assert messages[:14] == [
        ("2022-12-21 08:30", "办公室联络员", "reminder", "blue"),
        ("2022-12-21 08:30", "李道波", "reminder", "blue"),
        ("2022-12-27 08:30", "办公室联络员", "reminder", "blue"),
        ("2022-12-27 08:30", "李道波", "reminder", "blue"),
        ("2022-12-29 08:30", "办公室联络员", "reminder", "blue"),
        ("2022-12-29 08:30", "李道波", "reminder", "blue"),
        (
            "2022-12-30 08:30",
            "办公室联络员",
            "reminder",
            "blue",
        ),  # Friday: the due day is a Saturday
        ("2022-12-30 08:30", "李道波", "reminder", "blue"),
        (
            "2023-01-03 08:30",
            "办公室联络员",
            "escalation",
            "yellow",
        ),  # 01-02 is the New Year holiday
        ("2023-01-03 08:30", "李道波", "escalation", "yellow"),
        ("2023-01-05 08:30", "邓清华", "escalation", "yellow"),
        ("2023-01-09 08:30", "邓清华", "escalation", "red"),
        ("2023-01-16 08:30", "邓清华", "escalation", "red"),
        (
            "2023-01-28 08:30",
            "邓清华",
            "escalation",
            "red",
        ),  # Saturday 01-28: 调休 after Spring Festival
    ]


def test_nothing_is_sent_twice_or_outside_working_hours(year: Year) -> None:
    from bot.calendar import WorkCalendar

    cal = WorkCalendar("cn")
    counts = Counter(year.sent)
    assert max(counts.values()) == 1, [s for s, n in counts.items() if n > 1][:5]
    for s in year.sent:
        day = date.fromisoformat(s.when[:10])
        assert cal.is_workday(day), s
        assert "08:30" <= s.when[11:] < "18:00", s


def test_leaders_get_digests_only_on_working_days(year: Year) -> None:
    digests = [s for s in year.sent if s.kind == "digest"]
    assert digests and {s.to for s in digests} >= {"邓清华", "熊伟", "李道波"}
    per_day = Counter((s.when[:10], s.to) for s in digests)
    assert max(per_day.values()) == 1
    assert all(s.when.endswith("08:30") for s in digests)


def test_done_occurrences_get_nothing_more(year: Year) -> None:
    db = open_store(year.engine_url)
    with Session(db) as session:
        done = session.exec(select(Occurrence).where(Occurrence.status == DONE)).all()
        for occ in done:
            assert occ.completed_at is not None
            late = session.exec(
                select(Notification).where(
                    Notification.occurrence_id == occ.id,
                    Notification.state == "sent",
                    Notification.kind.in_(("reminder", "escalation")),  # type: ignore[attr-defined]
                    Notification.sent_at > occ.completed_at,  # type: ignore[operator]
                )
            ).all()
            assert late == []
    db.dispose()
