"""The escalation ladder of one occurrence: reminders before the due day, 督办 steps after it.

Pure: ``decide`` takes the occurrence's dates, its policy, the schedule's calendar and
``now``, and what was already planned (:class:`Progress`, stored on the row), and
returns the messages due now plus when to look again.  Rules:

- reminders go out at the start of working hours on the working day ``offset`` working
  days before the due day; a due day that is not a working day counts from the working
  day before it, so a reminder is never late;
- reminders missed while the process was down collapse into the latest one; once an
  escalation step is due, pending reminders are dropped (the escalation says it all);
- when several escalation steps fell due at once (a first run on an overdue list, a restart
  after downtime), only the step today's date implies is sent, to everyone the steps up to
  it name, once (``catch_up``): nobody hears the earlier steps replayed; a step's ``repeat``
  re-sends it every N working days while it is the current step, and repeats missed during
  downtime collapse into one;
- 三色督办: reminders are blue, escalation steps yellow, the last step red (or the
  step's own ``level``).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from bot.occurrences import CHECK, ScheduleTime

BLUE, YELLOW, RED = "blue", "yellow", "red"
REMINDER, PROGRESS, ESCALATION = "reminder", "progress", "escalation"


@dataclass(frozen=True)
class Progress:
    """What was already planned for an occurrence; kept on its row."""

    reminder_step: int = -1
    escalation_step: int = -1
    escalation_repeats: int = 0


@dataclass(frozen=True)
class Message:
    kind: str  # reminder | progress | escalation
    step: int
    repeat: int
    level: str
    targets: tuple[str, ...]
    at: datetime
    offset: int  # remind offset (<= 0) or escalation `after` (working days)
    catch_up: bool = False  # stands for several steps that fell due while nobody was told


@dataclass(frozen=True)
class Decision:
    send: list[Message]
    progress: Progress
    next_action_at: datetime | None


@dataclass(frozen=True)
class Ladder:
    """One occurrence's whole timetable, computed from its due day and policy."""

    reminders: list[Message]
    steps: list[Message]
    repeats: list[int | None] = field(default_factory=list)  # working days between repeats
    # each reminder's local day, and the working day the due day counts from (for clip)
    reminder_days: tuple[date, ...] = ()
    anchor: date | None = None


def ladder(
    *,
    due_date: date,
    period_start: date,
    occurrence_kind: str,
    remind: list[int],
    escalate: list[dict[str, Any]],
    st: ScheduleTime,
) -> Ladder:
    return clip(
        unclipped_ladder(
            due_date=due_date,
            occurrence_kind=occurrence_kind,
            remind=remind,
            escalate=escalate,
            st=st,
        ),
        period_start,
    )


def unclipped_ladder(
    *,
    due_date: date,
    occurrence_kind: str,
    remind: list[int],
    escalate: list[dict[str, Any]],
    st: ScheduleTime,
) -> Ladder:
    """The ladder of a due day whatever its period: occurrences due the same day under the
    same rules share it, and :func:`clip` drops the reminders before each one's period."""
    cal, hours = st.calendar, st.hours
    anchor = cal.workday_on_or_before(due_date)
    reminder_kind = PROGRESS if occurrence_kind == CHECK else REMINDER
    by_day: dict[date, int] = {}
    for offset in sorted(set(remind)):
        by_day[cal.shift_workdays(anchor, offset)] = offset  # one day: keep the later offset
    days = sorted(by_day)
    reminders = [
        Message(reminder_kind, i, 0, BLUE, ("assignees",), hours.day_start(day, st.tz), by_day[day])
        for i, day in enumerate(days)
    ]
    deadline = st.due_at(due_date)
    steps: list[Message] = []
    repeats: list[int | None] = []
    for j, step in enumerate(escalate):
        after = int(step["after"])
        day = cal.shift_workdays(due_date, after) if after else due_date
        at = hours.next_slot(max(hours.day_start(day, st.tz), deadline), st.tz, cal)
        level = step.get("level") or (RED if j == len(escalate) - 1 else YELLOW)
        steps.append(Message(ESCALATION, j, 0, level, tuple(step["to"]), at, after))
        repeats.append(step.get("repeat"))
    return Ladder(reminders, steps, repeats, tuple(days), anchor)


def clip(lad: Ladder, period_start: date) -> Ladder:
    """No reminder before the period began, except on the due day itself."""
    kept = [
        (day, message)
        for day, message in zip(lad.reminder_days, lad.reminders, strict=True)
        if day >= period_start or day == lad.anchor
    ]
    if len(kept) == len(lad.reminders):
        return lad
    return replace(
        lad,
        reminders=[replace(message, step=i) for i, (_, message) in enumerate(kept)],
        reminder_days=tuple(day for day, _ in kept),
    )


def clipped_from(lad: Ladder, period_start: date) -> int:
    """How many of a ladder's reminders its period drops (a cache key for :func:`clip`)."""
    return bisect_left(lad.reminder_days, period_start)


def _repeat_at(lad: Ladder, st: ScheduleTime, j: int, k: int) -> datetime | None:
    every = lad.repeats[j] if j < len(lad.repeats) else None
    if not every:
        return None
    first = lad.steps[j].at.astimezone(st.tz).date()
    return st.hours.day_start(st.calendar.shift_workdays(first, every * k), st.tz)


def decide(lad: Ladder, progress: Progress, st: ScheduleTime, now: datetime) -> Decision:
    send: list[Message] = []
    escalations = [m for m in lad.steps if m.step > progress.escalation_step and m.at <= now]
    reminder_step, escalation_step, repeats = (
        progress.reminder_step,
        progress.escalation_step,
        progress.escalation_repeats,
    )
    if escalations:
        reminder_step = max(reminder_step, len(lad.reminders) - 1)
        latest = escalations[-1]
        if len(escalations) > 1:  # catch up like a person would: where things stand today
            targets = tuple(dict.fromkeys(t for m in escalations for t in m.targets))
            latest = replace(latest, targets=targets, catch_up=True)
        send.append(latest)
        escalation_step = latest.step
        # a step begun late owes no back repeats, nor one falling due later the same day
        end_of_day = st.hours.day_end(now.astimezone(st.tz).date(), st.tz)
        repeats = _elapsed_repeats(lad, st, escalation_step, max(now, end_of_day))
    else:
        due = [m for m in lad.reminders if m.step > reminder_step and m.at <= now]
        if due:
            send.append(due[-1])
            reminder_step = due[-1].step
        if escalation_step >= 0:
            elapsed = _elapsed_repeats(lad, st, escalation_step, now)
            if elapsed > repeats:
                base = lad.steps[escalation_step]
                at = _repeat_at(lad, st, escalation_step, elapsed)
                send.append(replace(base, repeat=elapsed, at=at or now))
                repeats = elapsed
    new = Progress(reminder_step, escalation_step, repeats)
    return Decision(send, new, _next_action(lad, new, st))


def rebase(lad: Ladder, st: ScheduleTime, now: datetime) -> Progress:
    """Progress for a re-planned occurrence: what would already have gone out counts as done."""
    reminder_step = max((m.step for m in lad.reminders if m.at <= now), default=-1)
    escalation_step = max((m.step for m in lad.steps if m.at <= now), default=-1)
    repeats = _elapsed_repeats(lad, st, escalation_step, now) if escalation_step >= 0 else 0
    return Progress(reminder_step, escalation_step, repeats)


def _elapsed_repeats(lad: Ladder, st: ScheduleTime, j: int, now: datetime) -> int:
    every = lad.repeats[j] if 0 <= j < len(lad.repeats) else None
    if not every:
        return 0
    first = lad.steps[j].at.astimezone(st.tz).date()
    k = st.calendar.workdays_after(first, now.astimezone(st.tz).date()) // every
    while k > 0 and (at := _repeat_at(lad, st, j, k)) is not None and at > now:
        k -= 1
    return k


def _next_action(lad: Ladder, progress: Progress, st: ScheduleTime) -> datetime | None:
    candidates = [m.at for m in lad.steps if m.step > progress.escalation_step]
    if progress.escalation_step < 0:
        candidates += [m.at for m in lad.reminders if m.step > progress.reminder_step]
    if progress.escalation_step >= 0:
        repeat = _repeat_at(lad, st, progress.escalation_step, progress.escalation_repeats + 1)
        if repeat is not None:
            candidates.append(repeat)
    return min(candidates, default=None)
