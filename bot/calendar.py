"""Working-day calendar and working hours.

Deadlines and reminders are counted in working days of the mainland statutory calendar
(holidays and 调休 make-up workdays, from the ``chinesecalendar`` package). Everything here
is pure: no I/O and no wall-clock reads, so planning can be replayed with a simulated clock.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["WorkCalendar", "WorkingHours"]

logger = logging.getLogger("dutybot.calendar")

# A gap of ten years without a single working day can only be a misconfigured calendar.
_MAX_GAP_DAYS = 3660
_ONE_DAY = timedelta(days=1)


@functools.cache
def _package_knows(year: int) -> bool:
    """Ask the package itself, so a newer chinesecalendar release widens coverage for free."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _check_date(day: date) -> date:
    """Reject datetimes: their calendar day depends on a timezone the caller must choose."""
    if isinstance(day, datetime):
        raise TypeError(
            "WorkCalendar expects a date, not a datetime; convert to the schedule's "
            "timezone and take .date() first"
        )
    return day


class WorkCalendar:
    """Working days: mainland statutory calendar (kind="cn", holidays and 调休 make-up
    workdays from chinesecalendar) or every day (kind="all").

    The schedule's own ``holidays``/``workdays`` override the computed answer (local
    holidays, extra 调休). For a year chinesecalendar has not published yet, kind="cn"
    falls back to Mon–Fri plus those lists and warns once per year, because deadlines
    computed that way may move when the State Council publishes the real schedule.
    """

    def __init__(
        self,
        kind: Literal["cn", "all"] = "cn",
        *,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
    ) -> None:
        if kind not in ("cn", "all"):
            raise ValueError(f"unknown calendar kind {kind!r}; expected 'cn' or 'all'")
        self.kind: Literal["cn", "all"] = kind
        self._holidays = frozenset(_check_date(d) for d in holidays)
        self._workdays = frozenset(_check_date(d) for d in workdays)
        both = self._holidays & self._workdays
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"dates listed both as holiday and as workday: {listed}")
        self._cache: dict[date, bool] = {}
        self._shifts: dict[tuple[date, int], date] = {}
        self._spans: dict[tuple[date, date], int] = {}
        self._fallback_years: set[int] = set()

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(kind={self.kind!r}, holidays={len(self._holidays)}, "
            f"workdays={len(self._workdays)})"
        )

    @property
    def holidays(self) -> frozenset[date]:
        """The schedule's own holiday overrides."""
        return self._holidays

    @property
    def workdays(self) -> frozenset[date]:
        """The schedule's own make-up workday overrides."""
        return self._workdays

    @property
    def fallback_years(self) -> frozenset[int]:
        """Years answered by the Mon–Fri guess, so callers can flag plans that may shift."""
        return frozenset(self._fallback_years)

    def known(self, year: int) -> bool:
        """Whether answers for ``year`` are authoritative rather than a Mon–Fri guess."""
        return self.kind == "all" or _package_knows(year)

    def is_workday(self, day: date) -> bool:
        """Cached, because planning asks the same dates over and over."""
        try:
            return self._cache[day]
        except KeyError:
            pass
        answer = self._compute(_check_date(day))
        self._cache[day] = answer
        return answer

    def _compute(self, day: date) -> bool:
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        if self.kind == "all":
            return True
        if _package_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        if day.year not in self._fallback_years:
            self._fallback_years.add(day.year)
            logger.warning(
                "chinesecalendar has no statutory holiday data for %d; "
                "assuming Monday-Friday working days plus the schedule's own lists "
                "(upgrade chinesecalendar once the State Council publishes %d)",
                day.year,
                day.year,
            )
        return day.weekday() < 5

    def _step(self, day: date, direction: int) -> date:
        """Nearest working day strictly after (1) or before (-1) ``day``."""
        delta = _ONE_DAY if direction > 0 else -_ONE_DAY
        current = day
        for _ in range(_MAX_GAP_DAYS):
            try:
                current = current + delta
            except OverflowError:
                break
            if self.is_workday(current):
                return current
        where = "after" if direction > 0 else "before"
        raise ValueError(
            f"no working day within {_MAX_GAP_DAYS} days {where} {day.isoformat()}; "
            f"is the calendar configured with no working days at all?"
        )

    def shift_workdays(self, day: date, n: int) -> date:
        """Move by ``n`` working days; ``day`` itself is never counted, and n == 0 is a no-op.
        Cached: every occurrence's ladder asks the same few dates and offsets."""
        key = (day, n)
        found = self._shifts.get(key)
        if found is None:
            found = self._shifts[key] = self._shift(day, n)
        return found

    def _shift(self, day: date, n: int) -> date:
        current = _check_date(day)
        direction = 1 if n > 0 else -1
        for _ in range(abs(n)):
            current = self._step(current, direction)
        return current

    def workday_on_or_before(self, day: date) -> date:
        """Roll a non-working day back, e.g. a deadline that falls on a holiday."""
        return day if self.is_workday(day) else self._step(day, -1)

    def workday_on_or_after(self, day: date) -> date:
        """Roll a non-working day forward, e.g. a reminder that falls on a holiday."""
        return day if self.is_workday(day) else self._step(day, 1)

    def workdays_after(self, start: date, end: date) -> int:
        """Count working days d with start < d <= end, e.g. how overdue a task is.
        Cached: a digest or a catch-up asks it for thousands of items due the same days."""
        key = (start, end)
        found = self._spans.get(key)
        if found is None:
            found = self._spans[key] = self._workdays_after(start, end)
        return found

    def _workdays_after(self, start: date, end: date) -> int:
        _check_date(start)
        _check_date(end)
        count = 0
        current = start
        while current < end:
            current += _ONE_DAY
            if self.is_workday(current):
                count += 1
        return count


_HM = r"(\d{1,2})\s*[:：]\s*(\d{2})"
_RANGE_RE = re.compile(rf"^\s*{_HM}\s*(?:-|–|—|~|～|至|到)\s*{_HM}\s*$")


def _hm(hour: str, minute: str, text: str) -> time:
    h, m = int(hour), int(minute)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"invalid time of day {hour}:{minute} in working hours {text!r}")
    return time(h, m)


@dataclass(frozen=True)
class WorkingHours:
    """Daily office hours in the schedule's timezone; reminders are only sent inside them."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours take naive times; the timezone is the schedule's")
        if not self.start < self.end:
            shown = f"{self.start:%H:%M}-{self.end:%H:%M}"
            raise ValueError(f"working hours must start before they end, got {shown}")

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """Accept what people type in a schedule file, e.g. "08:30-18:00" or "8:30～18:00"."""
        if not isinstance(text, str):
            raise ValueError(f"working hours must be text like '08:30-18:00', got {text!r}")
        match = _RANGE_RE.match(text)
        if match is None:
            raise ValueError(
                f"cannot read working hours {text!r}; expected HH:MM-HH:MM, e.g. '08:30-18:00'"
            )
        sh, sm, eh, em = match.groups()
        return cls(_hm(sh, sm, text), _hm(eh, em, text))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def day_start(self, day: date, tz: ZoneInfo) -> datetime:
        """Aware, so it can be stored as UTC without guessing."""
        return datetime.combine(day, self.start, tzinfo=tz)

    def day_end(self, day: date, tz: ZoneInfo) -> datetime:
        """End of a working day: where a deadline date lands (exclusive bound of the hours)."""
        return datetime.combine(day, self.end, tzinfo=tz)

    def contains(self, instant: datetime, tz: ZoneInfo, cal: WorkCalendar) -> bool:
        """Judge the instant by the schedule's local wall clock, whatever zone it came in."""
        local = _to_local(instant, tz)
        start_dt = self.day_start(local.date(), tz)
        end_dt = self.day_end(local.date(), tz)
        return cal.is_workday(local.date()) and start_dt <= local < end_dt

    def next_slot(self, instant: datetime, tz: ZoneInfo, cal: WorkCalendar) -> datetime:
        """Earliest moment a reminder may go out: now if in hours, else next opening."""
        local = _to_local(instant, tz)
        if self.contains(local, tz, cal):
            return local
        today = local.date()
        if local < self.day_start(today, tz):
            day = cal.workday_on_or_after(today)
        else:
            day = cal.workday_on_or_after(today + _ONE_DAY)
        return self.day_start(day, tz)


def _to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """Refuse naive datetimes: their meaning depends on a zone nobody wrote down."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {instant.isoformat()}")
    return instant.astimezone(tz)
