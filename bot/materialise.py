"""Materialise occurrences: make the rows match the pure plan, idempotently.

Rows exist for a rolling horizon (not the infinite future).  Reconciling is keyed on
(task, period_start), so running it twice, or from two processes, never duplicates a
period.  The past is history: only open rows due today or later are re-planned, except a
deadline task's single row, which follows its deadline wherever it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.calendar import WorkCalendar, WorkingHours
from bot.occurrences import DEADLINE, PlannedOccurrence, ScheduleTime, Timing, plan
from bot.store.models import CANCELLED, OPEN, AuditEvent, Occurrence, Schedule, Task

REPLANNED = "replanned"
TASK_REMOVED = "task_removed"


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    cancelled: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.added += other.added
        self.updated += other.updated
        self.cancelled += other.cancelled
        return self


def schedule_time(schedule: Schedule) -> ScheduleTime:
    calendar = WorkCalendar(
        "all" if schedule.calendar == "all" else "cn",
        holidays=[date.fromisoformat(d) for d in schedule.holidays or []],
        workdays=[date.fromisoformat(d) for d in schedule.workdays or []],
    )
    return ScheduleTime(
        calendar, WorkingHours.parse(schedule.working_hours), ZoneInfo(schedule.timezone)
    )


def task_timing(task: Task, schedule: Schedule) -> Timing:
    start = task.start or schedule.issued_on or schedule.planned_from
    by_day = None if task.by == "end" else int(task.by.split()[1])
    check_every = (task.policy or {}).get("ongoing_check", "month")
    return Timing(
        task.kind, start, task.due, task.every, task.times, by_day, task.until, check_every
    )


def materialise(
    session: Session, schedule: Schedule, *, now: datetime, horizon_days: int, actor: str = "system"
) -> Counts:
    """Bring every active task's occurrences up to ``today + horizon_days``."""
    st = schedule_time(schedule)
    today = st.local_date(now)
    window_end = today + timedelta(days=horizon_days)
    # start where the last run stopped, so a long downtime loses no period
    resume = (
        schedule.materialised_until + timedelta(days=1) if schedule.materialised_until else None
    )
    window_start = max(schedule.planned_from, min(today, resume or today))
    tasks = session.exec(
        select(Task).where(Task.schedule_id == schedule.id, col(Task.active).is_(True))
    ).all()
    existing: dict[int, list[Occurrence]] = {}
    rows = session.exec(  # one query for the whole schedule, not one per task
        select(Occurrence).where(
            Occurrence.schedule_id == schedule.id,
            (Occurrence.due_date >= window_start) | (Occurrence.kind == DEADLINE),
        )
    )
    for row in rows:
        existing.setdefault(row.task_id, []).append(row)
    counts = Counts()
    for task in tasks:
        assert task.id is not None
        wanted = plan(task_timing(task, schedule), st.calendar, window_start, window_end)
        mine = existing.get(task.id, [])
        counts += _reconcile(session, schedule, task, wanted, mine, st, today, now, actor)
    schedule.materialised_until = max(window_end, schedule.materialised_until or window_end)
    session.add(schedule)
    return counts


def _reconcile(
    session: Session,
    schedule: Schedule,
    task: Task,
    wanted: list[PlannedOccurrence],
    rows: list[Occurrence],
    st: ScheduleTime,
    today: date,
    now: datetime,
    actor: str,
) -> Counts:
    counts = Counts()
    existing = {o.period_start: o for o in rows}
    by_start = {p.period_start: p for p in wanted}
    for start, planned in by_start.items():
        row = existing.get(start)
        if row is None:
            session.add(_new_row(schedule, task, planned, st, now))
            counts.added += 1
        elif _replan(row, planned, st, today, now):
            session.add(row)
            counts.updated += 1
    for start, row in existing.items():
        replannable = row.kind == DEADLINE or row.due_date >= today
        if start not in by_start and row.status == OPEN and replannable:
            cancel(session, row, REPLANNED, now=now, actor=actor)
            counts.cancelled += 1
    return counts


def _new_row(
    schedule: Schedule, task: Task, planned: PlannedOccurrence, st: ScheduleTime, now: datetime
) -> Occurrence:
    assert task.id is not None
    return Occurrence(
        task_id=task.id,
        schedule_id=schedule.id,
        kind=planned.kind,
        period_start=planned.period_start,
        period_end=planned.period_end,
        due_date=planned.due_date,
        due_at=st.due_at(planned.due_date),
        times_required=planned.times_required,
        created_at=now,
        next_action_at=now,  # the engine plans its ladder at the next tick
    )


def _replan(
    row: Occurrence, planned: PlannedOccurrence, st: ScheduleTime, today: date, now: datetime
) -> bool:
    """Move an open (or re-planned-away) row to the new plan; done rows are history."""
    reopen = row.status == CANCELLED and row.status_reason in (REPLANNED, TASK_REMOVED)
    if row.status != OPEN and not reopen:
        return False
    if row.kind != DEADLINE and row.due_date < today and not reopen:
        return False
    extended_to = (
        row.extended_to if row.extended_to and row.extended_to > planned.due_date else None
    )
    due_at = st.due_at(extended_to or planned.due_date)
    same = (row.period_end, row.due_date, row.times_required, row.kind, row.due_at) == (
        planned.period_end,
        planned.due_date,
        planned.times_required,
        planned.kind,
        due_at,
    )
    if same and not reopen:
        return False
    row.period_end, row.due_date = planned.period_end, planned.due_date
    row.times_required, row.kind = planned.times_required, planned.kind
    # a new deadline at or after an approved extension makes the extension moot
    row.extended_to, row.due_at = extended_to, due_at
    if reopen:
        row.status, row.status_reason = OPEN, None
    row.next_action_at = min(row.next_action_at or now, now)  # re-plan the ladder now
    return True


def cancel(session: Session, row: Occurrence, reason: str, *, now: datetime, actor: str) -> None:
    row.status, row.status_reason = CANCELLED, reason
    session.add(row)
    session.add(
        AuditEvent(
            at=now,
            actor=actor,
            action="occurrence_cancelled",
            schedule_id=row.schedule_id,
            task_id=row.task_id,
            occurrence_id=row.id,
            detail={"reason": reason, "due_date": row.due_date.isoformat()},
        )
    )
