"""A person's calendar feed, parsed back with icalendar as a calendar app would."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar, Event
from sqlalchemy import Engine

from bot.reports.ics import UnknownPerson, build_calendar, nominal_rule, person_events
from bot.reports.records import load_records
from bot.reports.writers import write_ics
from bot.store.db import session_scope
from tests.conftest import local
from tests.test_reports_scenario import AS_OF, SCHEDULE, import_second_list, seed_scenario


def export(engine: Engine, person: str, path: Path, now: datetime = AS_OF) -> Calendar:
    with session_scope(engine) as session:
        records = load_records(session, SCHEDULE)
    events = person_events(records, person, "zh-CN")
    write_ics(
        build_calendar(events, now=now, person=person, timezone="Asia/Shanghai", lang="zh-CN"),
        path,
    )
    return Calendar.from_ical(path.read_bytes())


def vevents(cal: Calendar) -> list[Event]:
    return [c for c in cal.walk("VEVENT")]


def masters(cal: Calendar) -> dict[str, Event]:
    """Events by UID, leaving out RECURRENCE-ID overrides."""
    return {str(e["UID"]): e for e in vevents(cal) if "RECURRENCE-ID" not in e}


def uid(ref: str) -> str:
    return f"{SCHEDULE}/{ref}@dutybot"


def exdates(event: Event) -> set[date]:
    """EXDATE may be one property or several; either way, the set of excluded days."""
    value = event.get("EXDATE")
    if value is None:
        return set()
    props = value if isinstance(value, list) else [value]
    return {d.dt for prop in props for d in prop.dts}


def expand(event: Event, overrides: list[Event], until: date) -> list[date]:
    """The due days a calendar app shows: RRULE minus EXDATE, moved by overrides."""
    start = event.decoded("DTSTART")
    rule = event["RRULE"].to_ical().decode()
    days = [
        d.date()
        for d in rrulestr(rule, dtstart=datetime(start.year, start.month, start.day))
        if d.date() <= until
    ]
    excluded = exdates(event)
    moved = {o.decoded("RECURRENCE-ID"): o.decoded("DTSTART") for o in overrides}
    return sorted(moved.get(d, d) for d in days if d not in excluded)


def test_monthly_duty_is_an_rrule_from_its_first_open_occurrence(
    engine: Engine, tmp_path: Path
) -> None:
    seed_scenario(engine)
    cal = export(engine, "邓清华", tmp_path / "deng.ics")
    assert str(cal["X-WR-CALNAME"]) == "督办事项 — 邓清华"
    monthly = masters(cal)[uid("7.3")]
    rule: dict[str, Any] = monthly["RRULE"]
    assert rule["FREQ"] == ["MONTHLY"]
    assert rule["UNTIL"] == [date(2022, 12, 31)]
    # May was done, so the feed starts at June's due day, the month's last working day
    assert monthly.decoded("DTSTART") == date(2022, 6, 30)
    assert monthly.decoded("DTEND") == date(2022, 7, 1)
    assert str(monthly["SUMMARY"]) == "【督办】7.3 主要负责人每月开展执法工作检查"
    description = str(monthly["DESCRIPTION"])
    assert "牵头领导：邓清华" in description
    assert "牵头单位：能源科、粮食科、办公室" in description
    assert "您的角色：牵头领导、责任领导" in description
    assert expand(monthly, [], date(2022, 12, 31)) == [
        date(2022, 6, 30),
        date(2022, 7, 29),
        date(2022, 8, 31),
        date(2022, 9, 30),
        date(2022, 10, 31),
        date(2022, 11, 30),
        date(2022, 12, 30),
    ]
    quarterly = masters(cal)[uid("3.1")]
    assert quarterly["RRULE"]["FREQ"] == ["MONTHLY"]
    assert quarterly["RRULE"]["BYMONTH"] == [3, 6, 9, 12]
    assert masters(cal)[uid("2.1")]["RRULE"]["FREQ"] == ["YEARLY"]


def test_deadline_tasks_are_single_all_day_events(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    cal = export(engine, "熊伟", tmp_path / "xiong.ics")
    events = masters(cal)
    four = events[uid("4")]
    assert four.decoded("DTSTART") == date(2022, 5, 31)
    assert isinstance(four.decoded("DTSTART"), date)
    assert not isinstance(four.decoded("DTSTART"), datetime)  # all-day
    assert "RRULE" not in four
    assert str(four["SUMMARY"]).startswith("【督办】4 ")
    assert "配合单位：办公室" in str(four["DESCRIPTION"])
    # an approved extension moves the event; a cancelled task leaves the calendar
    assert events[uid("18.1")].decoded("DTSTART") == date(2022, 7, 15)
    assert uid("6") not in events
    # 熊伟 is neither lead, responsible nor assignee of 3.1
    assert uid("3.1") not in events


def test_weekly_duty_follows_the_statutory_calendar(engine: Engine, tmp_path: Path) -> None:
    """Friday 2022-06-03 is the Dragon Boat holiday: that week's duty is due on Thursday."""
    seed_scenario(engine)
    cal = export(engine, "熊伟", tmp_path / "xiong.ics")
    weekly = masters(cal)[uid("7.2")]
    assert weekly["RRULE"]["FREQ"] == ["WEEKLY"] and weekly["RRULE"]["BYDAY"] == ["FR"]
    overrides = [e for e in vevents(cal) if str(e["UID"]) == uid("7.2") and "RECURRENCE-ID" in e]
    moved = {o.decoded("RECURRENCE-ID"): o.decoded("DTSTART") for o in overrides}
    assert moved[date(2022, 6, 3)] == date(2022, 6, 2)
    # National Day week: the make-up Sunday 2022-10-09 is that week's last working day
    assert moved[date(2022, 10, 7)] == date(2022, 10, 9)
    shown = expand(weekly, overrides, date(2022, 12, 31))
    assert date(2022, 6, 2) in shown and date(2022, 6, 3) not in shown


def test_workday_duty_excludes_holidays_and_adds_make_up_days(
    engine: Engine, tmp_path: Path
) -> None:
    seed_scenario(engine)
    cal = export(engine, "能源科联络员", tmp_path / "energy.ics")
    daily = masters(cal)[uid("7.1")]
    excluded = exdates(daily)
    assert {date(2022, 6, 3), date(2022, 10, 3), date(2022, 10, 7)} <= excluded
    assert date(2022, 6, 2) not in excluded
    extra = masters(cal)[f"{SCHEDULE}/7.1/2022-10-08@dutybot"]
    assert extra.decoded("DTSTART") == date(2022, 10, 8) and "RRULE" not in extra


def test_uids_are_stable_across_exports(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    first = export(engine, "邓清华", tmp_path / "a.ics", now=AS_OF)
    second = export(engine, "邓清华", tmp_path / "b.ics", now=AS_OF + timedelta(days=9))
    uids = [str(e["UID"]) for e in vevents(first)]
    assert uids == [str(e["UID"]) for e in vevents(second)]
    assert len(set(masters(first))) == len(masters(first)) > 5
    assert {uid("1"), uid("4"), uid("7.3")} <= set(uids)
    # only DTSTAMP says when the file was made
    assert {e.decoded("DTSTAMP") for e in vevents(second)} == {AS_OF + timedelta(days=9)}


def test_unknown_person(engine: Engine) -> None:
    seed_scenario(engine)
    with session_scope(engine) as session:
        records = load_records(session, SCHEDULE)
    with pytest.raises(UnknownPerson):
        person_events(records, "熊玮", "zh-CN")


@pytest.mark.parametrize(
    ("every", "by", "expected"),
    [
        ("day", "end", {"FREQ": "DAILY"}),
        ("week", "day 2", {"FREQ": "WEEKLY", "BYDAY": ["TU"]}),
        ("month", "day 2", {"FREQ": "MONTHLY", "BYMONTHDAY": [2]}),
        ("quarter", "day 10", {"FREQ": "MONTHLY", "BYMONTH": [1, 4, 7, 10], "BYMONTHDAY": [10]}),
        (
            "half-year",
            "end",
            {
                "FREQ": "MONTHLY",
                "BYMONTH": [6, 12],
                "BYDAY": ["MO", "TU", "WE", "TH", "FR"],
                "BYSETPOS": [-1],
            },
        ),
        ("month", "day 45", None),
    ],
)
def test_nominal_rules(every: str, by: str, expected: dict[str, Any] | None) -> None:
    assert nominal_rule(every, by) == expected


def test_rrule_string_duty_keeps_its_rule() -> None:
    rule = nominal_rule("FREQ=MONTHLY;BYMONTHDAY=2", "end")
    assert rule is not None and rule["FREQ"] == ["MONTHLY"] and rule["BYMONTHDAY"] == [2]


def test_dtstamp_is_utc(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    cal = export(engine, "邓清华", tmp_path / "deng.ics", now=local(2022, 6, 20, 10, 0))
    assert b"DTSTAMP:20220620T020000Z" in (tmp_path / "deng.ics").read_bytes()
    assert vevents(cal)


def test_ongoing_duty_asks_progress_monthly(engine: Engine, tmp_path: Path) -> None:
    """长期坚持: no deadline, so the feed shows the monthly progress report (ongoing_check)."""
    seed_scenario(engine)
    import_second_list(engine, tmp_path)
    with session_scope(engine) as session:
        records = load_records(session, "demo-town-2022")
    events = {e.uid: e for e in person_events(records, "王明", "zh-CN") if e.recurrence_id is None}
    ongoing = events["demo-town-2022/2@dutybot"]
    assert ongoing.rrule is not None and ongoing.rrule["FREQ"] == "MONTHLY"
    assert ongoing.start == date(2022, 5, 31) and "UNTIL" not in ongoing.rrule
    assert events["demo-town-2022/1@dutybot"].start == date(2022, 6, 30)


def test_done_items_are_completed_and_open_ones_carry_an_alarm(
    engine: Engine, tmp_path: Path
) -> None:
    from sqlmodel import col, select

    from bot import replies
    from bot.materialise import materialise
    from bot.store.models import OPEN, Occurrence, Person, Schedule, Task

    seed_scenario(engine)
    with session_scope(engine) as session:  # July's 7.3 done early, June's still open
        schedule = session.get(Schedule, SCHEDULE)
        assert schedule is not None
        materialise(session, schedule, now=AS_OF, horizon_days=62)
        deng = session.exec(select(Person).where(Person.name == "邓清华")).one()
        task = session.exec(
            select(Task).where(Task.schedule_id == SCHEDULE, Task.ref == "7.3")
        ).one()
        july = session.exec(
            select(Occurrence)
            .where(Occurrence.task_id == task.id, Occurrence.status == OPEN)
            .order_by(col(Occurrence.period_start))
        ).all()[1]
        assert july.period_start == date(2022, 7, 1) and july.id and deng.id
        replies.complete(session, occurrence_id=july.id, person_id=deng.id, now=AS_OF, note="x")
    cal = export(engine, "邓清华", tmp_path / "deng.ics")
    monthly = [e for e in vevents(cal) if str(e["UID"]) == uid("7.3")]
    master = next(e for e in monthly if "RECURRENCE-ID" not in e)
    [done] = [e for e in monthly if "RECURRENCE-ID" in e]
    assert done.decoded("RECURRENCE-ID") == date(2022, 7, 29)
    assert str(done["STATUS"]) == "COMPLETED" and not done.walk("VALARM")
    assert "STATUS" not in master
    [alarm] = master.walk("VALARM")
    assert alarm.decoded("TRIGGER") == -timedelta(hours=15)  # 09:00 the day before
