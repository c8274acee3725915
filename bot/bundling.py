"""Which message a notification travels in, and when: pure rules, no I/O.

A person hears about chasing items at most once per sending window (reminders) and once a
day per level (escalations); everything else goes out when it is due, gathered only with
notices of the same kind due at the same minute.  The outbox (:func:`bot.outbox.gather`)
applies these rules to rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.calendar import WorkingHours
from bot.occurrences import ScheduleTime

REMIND_KINDS = ("reminder", "progress")
ESCALATION = "escalation"
DIGEST = "digest"
CHASING_KINDS = (*REMIND_KINDS, ESCALATION)
DEFAULT_WINDOWS = ("08:30-12:00", "14:00-18:00")
DEFAULT_DAILY_CAP = 8
MAX_WINDOW_STEPS = 400  # a year of two windows a working day: far beyond any real search

# How long an undelivered notification stays worth sending (then it is dead: visible to admins
# and re-drivable).  Reminders are overtaken by the next step; a request waits for its leader.
RELEVANCE = {
    "reminder": timedelta(days=2),
    "progress": timedelta(days=3),
    "escalation": timedelta(days=5),
    "digest": timedelta(hours=12),
}
DEFAULT_RELEVANCE = timedelta(days=7)


def relevance(kind: str) -> timedelta:
    return RELEVANCE.get(kind, DEFAULT_RELEVANCE)


@dataclass(frozen=True)
class Slot:
    """One sending window on one day: messages in it go out from ``send_at``."""

    start: datetime
    end: datetime
    send_at: datetime

    @property
    def day(self) -> date:
        return self.start.date()


@dataclass(frozen=True)
class Windows:
    """A schedule's sending windows (inside its working hours) on working days."""

    spans: tuple[WorkingHours, ...]
    daily_cap: int = DEFAULT_DAILY_CAP

    @classmethod
    def from_policy(cls, policy: dict[str, Any] | None, hours: WorkingHours) -> Windows:
        delivery = (policy or {}).get("delivery") or {}
        texts = delivery.get("windows") or DEFAULT_WINDOWS
        spans = []
        for text in texts:
            span = WorkingHours.parse(text)
            start, end = max(span.start, hours.start), min(span.end, hours.end)
            if start < end:  # a window outside working hours is no window
                spans.append(WorkingHours(start, end))
        if not spans:
            spans = [hours]
        cap = int(delivery.get("daily_cap") or DEFAULT_DAILY_CAP)
        return cls(tuple(sorted(spans, key=lambda s: s.start)), cap)

    def slot(self, instant: datetime, st: ScheduleTime) -> Slot:
        """The window an instant falls in, or the next one to open."""
        local = instant.astimezone(st.tz)
        day = local.date()
        for _ in range(MAX_WINDOW_STEPS):
            if st.calendar.is_workday(day):
                for span in self.spans:
                    start, end = span.day_start(day, st.tz), span.day_end(day, st.tz)
                    if local < end:
                        return Slot(start, end, max(start, local))
            day += timedelta(days=1)
        raise ValueError(f"no sending window within {MAX_WINDOW_STEPS} days of {instant}")

    def after(self, slot: Slot, st: ScheduleTime) -> Slot:
        """The next window after this one."""
        return self.slot(slot.end, st)

    def next_day(self, slot: Slot, st: ScheduleTime) -> Slot:
        """The first window of the next working day."""
        day = slot.start.astimezone(st.tz).date() + timedelta(days=1)
        return self.slot(datetime.combine(day, self.spans[0].start, st.tz), st)


def bundle_class(kind: str, level: str | None) -> str:
    """Notifications of one class may share a message."""
    if kind in REMIND_KINDS:
        return "remind"
    if kind == ESCALATION:
        return f"escalate-{level or 'yellow'}"
    return kind


@dataclass(frozen=True)
class Placement:
    """Where one notification goes: the bundle key's window part and when it may be sent."""

    bucket: str
    send_at: datetime
    day: date | None  # the local day it counts against the daily cap (chasing kinds)


def place(
    *,
    kind: str,
    level: str | None,
    not_before: datetime,
    notification_id: int,
    windows: Windows,
    st: ScheduleTime,
    attempt: int = 0,
) -> Placement:
    """Attempt 0 is the natural window; each further attempt is the next one (the window's
    message was already sent, or the day's cap was reached)."""
    if kind in REMIND_KINDS:
        slot = windows.slot(not_before, st)
        for _ in range(attempt):
            slot = windows.after(slot, st)
        return Placement(f"w{slot.start.isoformat()}", slot.send_at, slot.day)
    if kind == ESCALATION:
        slot = windows.slot(not_before, st)
        for _ in range(attempt):
            slot = windows.next_day(slot, st)
        return Placement(f"d{slot.day.isoformat()}", slot.send_at, slot.day)
    if kind == DIGEST:
        return Placement(f"n{notification_id}", not_before, None)
    minute = not_before.replace(second=0, microsecond=0)
    return Placement(f"m{minute.isoformat()}", not_before, None)
