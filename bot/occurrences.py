"""Occurrences: the dated instances of a task.  Pure planning, no I/O, no clock.

A deadline task has one occurrence, due at the end of its due day.  A recurring task has
one per period (calendar-aligned: weeks start on Monday, quarters in Jan/Apr/Jul/Oct,
half-years in Jan/Jul), due on the period's last working day or on its N-th day
(``by: day N``, 每月2日前 → day 2 of each month).  The first period is clipped to
start at ``from``; a period whose due day falls before ``from`` is skipped; none start
after ``until``.
An ongoing task (长期坚持) asks for a progress report every ``ongoing_check`` period.
An undated task (``due: 待定``) has none until a date is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

from bot.calendar import WorkCalendar, WorkingHours

DEADLINE = "deadline"
PERIOD = "period"
CHECK = "check"
UNDATED = "undated"  # a task kind (due: 待定), never an occurrence kind

_MONTHS_PER = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
_CALENDAR_PERIODS = ("day", "workday", "week", *_MONTHS_PER)


@dataclass(frozen=True)
class Timing:
    """What a task says about time, independent of where it is stored."""

    kind: str  # deadline | recurring | ongoing | undated
    start: date
    due: date | None = None
    every: str | None = None
    times: int = 1
    by_day: int | None = None
    until: date | None = None
    check_every: str = "month"


@dataclass(frozen=True)
class PlannedOccurrence:
    kind: str
    period_start: date
    period_end: date
    due_date: date
    times_required: int = 1


@dataclass(frozen=True)
class ScheduleTime:
    """A schedule's calendar, working hours and timezone: what dates need to become instants."""

    calendar: WorkCalendar
    hours: WorkingHours
    tz: ZoneInfo

    def due_at(self, due_date: date) -> datetime:
        """A deadline date means the end of that working day."""
        return self.hours.day_end(due_date, self.tz)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()


def plan(
    timing: Timing, cal: WorkCalendar, window_start: date, window_end: date
) -> list[PlannedOccurrence]:
    """Occurrences due in [window_start, window_end]; a deadline whatever the window."""
    if timing.kind == UNDATED:
        return []  # due: 待定 — nothing to chase until an admin sets a date
    if timing.kind == "deadline":
        assert timing.due is not None
        start = min(timing.start, timing.due)
        return [PlannedOccurrence(DEADLINE, start, timing.due, timing.due, 1)]
    if timing.kind == "ongoing":
        every, times, by_day, kind = timing.check_every, 1, None, CHECK
    else:
        assert timing.every is not None
        every, times, by_day, kind = timing.every, timing.times, timing.by_day, PERIOD
    lo = max(window_start, timing.start)
    hi = min(window_end, timing.until) if timing.until else window_end
    if hi < lo:
        return []
    planned = []
    is_rrule = every not in _CALENDAR_PERIODS
    for period_start, period_end, due in _periods(every, by_day, timing.start, lo, hi, cal):
        if timing.until:
            if period_start > timing.until or (is_rrule and due > timing.until):
                break  # an RRULE instance *is* the duty moment: none after until
            period_end, due = min(period_end, timing.until), min(due, timing.until)
        if due > window_end:
            break  # due days only grow from one period to the next
        if due >= lo:
            planned.append(PlannedOccurrence(kind, period_start, period_end, due, times))
    return planned


def _periods(
    every: str, by_day: int | None, first: date, lo: date, hi: date, cal: WorkCalendar
) -> Iterator[tuple[date, date, date]]:
    """(start clipped to ``first``, end, due day) of each period that may fall in [lo, hi]."""
    if every not in _CALENDAR_PERIODS:
        yield from _rrule_periods(every, first, lo, hi)
        return
    start = _period_start(every, lo)
    while start <= hi:
        end = _next_start(every, start) - timedelta(days=1)
        if every == "workday" and not cal.is_workday(start):
            start = end + timedelta(days=1)
            continue
        clipped = max(start, first)
        if by_day is not None:
            due = min(start + timedelta(days=by_day - 1), end)
        elif every in ("day", "workday"):
            due = end
        else:  # a period "ends" on its last working day: a week's duty is due on Friday
            last = cal.workday_on_or_before(end)
            due = last if last >= clipped else end
        yield clipped, end, due
        start = end + timedelta(days=1)


def _period_start(every: str, day: date) -> date:
    if every in ("day", "workday"):
        return day
    if every == "week":
        return day - timedelta(days=day.weekday())
    months = _MONTHS_PER[every]
    month = (day.month - 1) // months * months + 1
    return date(day.year, month, 1)


def _next_start(every: str, start: date) -> date:
    if every in ("day", "workday"):
        return start + timedelta(days=1)
    if every == "week":
        return start + timedelta(days=7)
    return start + relativedelta(months=_MONTHS_PER[every])


def _rrule_periods(rule: str, first: date, lo: date, hi: date) -> Iterator[tuple[date, date, date]]:
    """Each RRULE instance is a due day; its period runs from the day after the previous one."""
    recurrence = rrulestr(rule, dtstart=datetime(first.year, first.month, first.day))
    previous = recurrence.before(datetime(lo.year, lo.month, lo.day))
    period_start = previous.date() + timedelta(days=1) if previous else first
    for instant in recurrence.xafter(datetime(lo.year, lo.month, lo.day), inc=True):
        due = instant.date()
        yield period_start, due, due
        if due > hi:
            return
        period_start = due + timedelta(days=1)
