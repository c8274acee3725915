"""A person's duties as an iCalendar feed: all-day events on the due days.

A deadline task is one event.  A recurring duty is one event with an RRULE, starting at its
first open occurrence and ending at ``until``.  A nominal RRULE cannot know the statutory
calendar (a quarter's last working day moves with holidays and 调休), so the real plan is
laid beside the rule: where a due day differs, that instance is moved with a
RECURRENCE-ID override; where the rule has an instance the plan does not, it is excluded
(EXDATE); a planned due day the rule misses becomes an event of its own.  Calendar apps
then show exactly the days dutybot chases.

UIDs are derived from the schedule and task ref only, so re-exporting updates events in
place instead of duplicating them.  A completed item carries STATUS:COMPLETED; an open one a
VALARM at 09:00 the day before (an all-day event starts at midnight), so a subscribed phone
reminds without the bot.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dateutil.rrule import rrulestr
from icalendar import Alarm, Calendar, Event, vRecur

from bot.materialise import task_timing
from bot.occurrences import ScheduleTime, plan
from bot.reports.ledger import deadline_cell
from bot.reports.records import ScheduleRecord, TaskRecord
from bot.store.models import CANCELLED, DONE, OPEN, Schedule
from bot.texts import phrase

PRODID = "-//dutybot//dutybot calendar feed//ZH"
UID_DOMAIN = "dutybot"
HORIZON_DAYS = 400  # how far an open-ended duty's plan is laid beside its rule
ROLES = ("lead", "responsible", "assignee")
ALARM_BEFORE = timedelta(hours=15)  # 09:00 the day before an all-day event's midnight
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WORKWEEK = list(_WEEKDAYS[:5])
_PERIOD_MONTHS = {  # months in which a period ends / begins
    "quarter": ([3, 6, 9, 12], [1, 4, 7, 10]),
    "half-year": ([6, 12], [1, 7]),
    "year": ([12], [1]),
}


class UnknownPerson(LookupError):
    """Raised when no schedule (of those asked) has a person of that name."""


@dataclass(frozen=True)
class DutyEvent:
    """One VEVENT: a master (with or without RRULE), an override, or a lone instance."""

    uid: str
    start: date
    summary: str
    description: str
    rrule: dict[str, Any] | None = None
    exdates: tuple[date, ...] = ()
    recurrence_id: date | None = None
    completed: bool = False


@dataclass
class _Slot:
    """A period to be shown: its span and (possibly extended) due day."""

    period_start: date
    period_end: date
    due: date
    cancelled: bool = False
    done: bool = False
    used: bool = field(default=False, compare=False)


def uid(schedule_id: str, ref: str, day: date | None = None) -> str:
    """Stable across exports: schedule and ref (and a day for a lone extra instance)."""
    tail = f"/{day.isoformat()}" if day else ""
    return f"{schedule_id}/{ref}{tail}@{UID_DOMAIN}"


def nominal_rule(every: str, by: str) -> dict[str, Any] | None:
    """The RRULE that reads like the duty (每月 → FREQ=MONTHLY); None if none fits."""
    if "FREQ=" in every.upper():
        return dict(vRecur.from_ical(every))
    by_day = None if by == "end" else int(by.split()[1])
    if every == "day":
        return {"FREQ": "DAILY"}
    if every == "workday":
        return {"FREQ": "WEEKLY", "BYDAY": _WORKWEEK}
    if every == "week":
        day = _WEEKDAYS[min(by_day, 7) - 1] if by_day else "FR"
        return {"FREQ": "WEEKLY", "BYDAY": [day]}
    if by_day is not None and by_day > 31:
        return None
    if every == "month":
        if by_day:
            return {"FREQ": "MONTHLY", "BYMONTHDAY": [by_day]}
        return {"FREQ": "MONTHLY", "BYDAY": _WORKWEEK, "BYSETPOS": [-1]}
    if every in _PERIOD_MONTHS:
        ends, starts = _PERIOD_MONTHS[every]
        freq = "YEARLY" if every == "year" else "MONTHLY"
        if by_day:
            return {"FREQ": freq, "BYMONTH": starts, "BYMONTHDAY": [by_day]}
        return {"FREQ": freq, "BYMONTH": ends, "BYDAY": _WORKWEEK, "BYSETPOS": [-1]}
    return None


def _rule_text(rule: dict[str, Any]) -> str:
    return vRecur(rule).to_ical().decode()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def rule_instances(rule: dict[str, Any], dtstart: date, lo: date, hi: date) -> list[date]:
    """Days the rule yields in [lo, hi], as calendar apps will compute them."""
    recurrence = rrulestr(_rule_text(rule), dtstart=_midnight(dtstart))
    return [d.date() for d in recurrence.between(_midnight(lo), _midnight(hi), inc=True)]


def roles_of(record: TaskRecord, person: str) -> list[str]:
    """The person's roles in a task, as lead, responsible official or assignee."""
    found = {
        "lead": person in record.lead,
        "responsible": person in record.responsible,
        "assignee": person in record.assignees,
    }
    return [role for role in ROLES if found[role]]


def _slots(
    record: TaskRecord, schedule: Schedule, st: ScheduleTime, lo: date, hi: date
) -> list[_Slot]:
    """The plan between lo and hi, with stored rows' extensions and cancellations applied."""
    stored = {o.period_start: o for o in record.occurrences}
    slots = []
    for planned in plan(task_timing(record.task, schedule), st.calendar, lo, hi):
        row = stored.get(planned.period_start)
        due = (row.extended_to or row.due_date) if row else planned.due_date
        cancelled = row is not None and row.status == CANCELLED
        done = row is not None and row.status == DONE
        slots.append(_Slot(planned.period_start, planned.period_end, due, cancelled, done))
    return slots


def _anchor(record: TaskRecord, schedule: Schedule) -> date:
    """Where the feed starts: the first open occurrence, else after the last stored one."""
    rows = sorted(record.occurrences, key=lambda o: o.period_start)
    open_rows = [o for o in rows if o.status == OPEN]
    if open_rows:
        return open_rows[0].period_start
    if rows:
        return rows[-1].period_end + timedelta(days=1)
    return task_timing(record.task, schedule).start


def recurring_events(
    record: TaskRecord,
    schedule: Schedule,
    st: ScheduleTime,
    *,
    summary: str,
    description: str,
) -> list[DutyEvent]:
    """A master event with RRULE, plus overrides, exclusions and lone instances."""
    task = record.task
    timing = task_timing(task, schedule)
    every = timing.every if task.kind == "recurring" else timing.check_every
    assert every is not None
    anchor = _anchor(record, schedule)
    until = task.until
    if until is not None and anchor > until:
        return []
    hi = until or anchor + timedelta(days=HORIZON_DAYS)
    slots = _slots(record, schedule, st, anchor, hi)
    rule = nominal_rule(every, task.by if task.kind == "recurring" else "end")
    events: list[DutyEvent] = []
    instances: list[date] = []
    if rule is not None:
        if until is not None and "UNTIL" not in rule and "COUNT" not in rule:
            rule["UNTIL"] = until
        is_rrule_text = "FREQ=" in every.upper()
        rule_start = timing.start if is_rrule_text else anchor
        instances = rule_instances(rule, rule_start, anchor, hi)
    if instances:
        starts = [s.period_start for s in slots]
        exdates: list[date] = []
        overrides: list[DutyEvent] = []
        for day in instances:
            index = bisect.bisect_right(starts, day) - 1
            slot = slots[index] if index >= 0 and day <= slots[index].period_end else None
            if slot is None or slot.used or slot.cancelled:
                exdates.append(day)
                if slot is not None:
                    slot.used = True
                continue
            slot.used = True
            if slot.due != day or slot.done:  # moved, or done out of turn: its own instance
                overrides.append(
                    DutyEvent(
                        uid(schedule.id, task.ref),
                        slot.due,
                        summary,
                        description,
                        recurrence_id=day,
                        completed=slot.done,
                    )
                )
        master = DutyEvent(
            uid(schedule.id, task.ref),
            instances[0],
            summary,
            description,
            rrule=rule,
            exdates=tuple(exdates),
        )
        events += [master, *overrides]
    for slot in slots:
        if not slot.used and not slot.cancelled:
            events.append(
                DutyEvent(
                    uid(schedule.id, task.ref, slot.due),
                    slot.due,
                    summary,
                    description,
                    completed=slot.done,
                )
            )
    return events


def task_events(
    record: TaskRecord, schedule: Schedule, st: ScheduleTime, *, roles: list[str], lang: str
) -> list[DutyEvent]:
    """The events of one task for one person; none for a removed or cancelled task."""
    task = record.task
    if not task.active:
        return []
    summary = phrase("ics", "summary", lang, ref=task.ref, title=task.title)
    description = phrase(
        "ics",
        "description",
        lang,
        task=task,
        schedule=schedule,
        roles=roles,
        lead=list(record.lead),
        responsible=list(record.responsible),
        units=list(record.units),
        partners=list(record.partners),
        deadline=deadline_cell(task, lang),
    )
    if task.kind != "deadline":
        return recurring_events(record, schedule, st, summary=summary, description=description)
    live = [o for o in record.occurrences if o.status != CANCELLED]
    if record.occurrences and not live:
        return []
    due = (live[-1].extended_to or live[-1].due_date) if live else task.due
    if due is None:
        return []
    done = bool(live) and live[-1].status == DONE
    return [DutyEvent(uid(schedule.id, task.ref), due, summary, description, completed=done)]


def person_events(records: list[ScheduleRecord], person: str, lang: str) -> list[DutyEvent]:
    """Every duty of ``person`` (by name) as lead, responsible official or assignee."""
    known = False
    events: list[DutyEvent] = []
    for record in records:
        names = {p for t in record.tasks for p in (*t.lead, *t.responsible, *t.assignees)}
        if person in names:
            known = True
        for task_record in record.tasks:
            roles = roles_of(task_record, person)
            if roles:
                events += task_events(
                    task_record, record.schedule, record.time, roles=roles, lang=lang
                )
    if not known:
        raise UnknownPerson(person)
    return events


def build_calendar(
    events: list[DutyEvent], *, now: datetime, person: str, timezone: str, lang: str
) -> Calendar:
    """The VCALENDAR; ``now`` stamps DTSTAMP, so two exports differ only there."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", phrase("ics", "calendar_name", lang, person=person))
    cal.add("x-wr-timezone", timezone)
    for item in events:
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", item.start)
        event.add("dtend", item.start + timedelta(days=1))
        event.add("summary", item.summary)
        event.add("description", item.description)
        event.add("transp", "TRANSPARENT")  # a due day is not a busy day
        if item.rrule is not None:
            event.add("rrule", item.rrule)
        if item.exdates:
            event.add("exdate", list(item.exdates))
        if item.recurrence_id is not None:
            event.add("recurrence-id", item.recurrence_id)
        if item.completed:
            event.add("status", "COMPLETED")
        else:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", item.summary)
            alarm.add("trigger", -ALARM_BEFORE)
            event.add_component(alarm)
        cal.add_component(event)
    return cal
