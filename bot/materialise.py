"""Materialise occurrences: make the rows match the pure plan, idempotently.

Rows exist for a rolling horizon (not the infinite future).  Reconciling is keyed on
(task, period_start), so running it twice, or from two processes, never duplicates a
period.  The past is history: only open rows due today or later are re-planned, except a
deadline task's single row, which follows its deadline wherever it is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from bot.calendar import WorkCalendar, WorkingHours
from bot.occurrences import DEADLINE, PlannedOccurrence, ScheduleTime, Timing, plan
from bot.store.db import bulk_insert
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


def task_timing(task: Task | Any, schedule: Schedule) -> Timing:
    """``task``: a Task, or any row with its timing columns (see _TASK_COLUMNS) and
    ``ongoing_check``."""
    start = task.start or schedule.issued_on or schedule.planned_from
    by_day = None if task.by == "end" else int(task.by.split()[1])
    check_every = getattr(task, "ongoing_check", None) or (
        (getattr(task, "policy", None) or {}).get("ongoing_check") or "month"
    )
    return Timing(
        task.kind, start, task.due, task.every, task.times, by_day, task.until, check_every
    )


_TASK_COLUMNS = ("id", "kind", "start", "due", "every", "times", "by", "until")
_ROW_COLUMNS = (
    "id",
    "task_id",
    "period_start",
    "period_end",
    "due_date",
    "extended_to",
    "due_at",
    "times_required",
    "kind",
    "status",
    "status_reason",
    "next_action_at",
)
_UPDATED = (
    "period_end",
    "due_date",
    "times_required",
    "kind",
    "extended_to",
    "due_at",
    "status",
    "status_reason",
    "next_action_at",
)


@dataclass
class _Writes:
    """What reconciling decided, written afterwards in a few set-based statements."""

    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[Any] = field(default_factory=list)  # rows (id, task_id, due_date, …)


_CHUNK = 500  # ids per IN (…): SQLite allows 32,766 bound parameters, PostgreSQL 65,535


def materialise(
    session: Session,
    schedule: Schedule,
    *,
    now: datetime,
    horizon_days: int,
    actor: str = "system",
    only: set[int] | None = None,
    fresh: Collection[int] = (),
) -> Counts:
    """Bring every active task's occurrences up to ``today + horizon_days``.

    ``only`` limits the work to those task ids (a re-import re-plans what moved, not 100k rows
    that did not); the caller vouches that the others are planned up to the window already.
    ``fresh``: tasks created by the caller's transaction, whose rows nobody else can have
    written (they are inserted without the conflict check: COPY straight in on PostgreSQL).
    Rows are read as plain tuples and written in bulk: ORM objects for 100k rows cost seconds
    and hundreds of MiB."""
    session.flush()
    st = schedule_time(schedule)
    today = st.local_date(now)
    window_end = today + timedelta(days=horizon_days)
    # start where the last run stopped, so a long downtime loses no period
    resume = (
        schedule.materialised_until + timedelta(days=1) if schedule.materialised_until else None
    )
    window_start = max(schedule.planned_from, min(today, resume or today))
    if only is not None and (
        schedule.materialised_until is None or schedule.materialised_until < window_end
    ):
        only = None  # the horizon rolls forward: every task gets its new days
    # tasks as plain rows too: building ORM objects cost more than the planning itself
    tasks_table = Task.__table__  # type: ignore[attr-defined]
    # the one policy field timing needs, read in SQL: decoding every policy document was
    # more than half of reading 10,000 tasks
    check = tasks_table.c.policy["ongoing_check"].as_string().label("ongoing_check")
    active = sa.select(*(tasks_table.c[n] for n in _TASK_COLUMNS), check).where(
        tasks_table.c.schedule_id == schedule.id, tasks_table.c.active.is_(True)
    )
    table = Occurrence.__table__  # type: ignore[attr-defined]
    query = sa.select(*(table.c[n] for n in _ROW_COLUMNS)).where(
        table.c.schedule_id == schedule.id,
        (table.c.due_date >= window_start) | (table.c.kind == DEADLINE),
    )
    existing: dict[int, list[Any]] = {}
    connection = session.connection()
    tasks: list[Any] = []
    if only is None:
        tasks.extend(connection.execute(active))
        for row in connection.execute(query):  # one query for the schedule
            existing.setdefault(row.task_id, []).append(row)
    else:  # read only what moved, by chunks of ids (an IN list stays within every backend's limit)
        ids = sorted(only)
        for at in range(0, len(ids), _CHUNK):
            chunk = ids[at : at + _CHUNK]
            tasks.extend(connection.execute(active.where(tasks_table.c.id.in_(chunk))))
            for row in connection.execute(query.where(table.c.task_id.in_(chunk))):
                existing.setdefault(row.task_id, []).append(row)
    fresh = set(fresh)
    writes = _Writes()
    for task in tasks:
        assert task.id is not None
        if task.id in fresh:
            continue  # planned while its rows are written, below
        wanted = plan(task_timing(task, schedule), st.calendar, window_start, window_end)
        _reconcile(schedule, task, wanted, existing.get(task.id, []), st, today, now, writes)

    def fresh_rows() -> Iterator[dict[str, Any]]:
        """A new task has no rows to reconcile: every planned period is a new row."""
        for task in tasks:
            if task.id in fresh:
                timing = task_timing(task, schedule)
                for planned in plan(timing, st.calendar, window_start, window_end):
                    yield _new_row(schedule, task, planned, st, now)

    # rows nobody else can have written go in without the conflict check (COPY straight in
    # on PostgreSQL), planned as they are sent, so the server inserts while Python plans
    counts = Counts(bulk_insert(session, Occurrence, fresh_rows(), on_conflict=None))
    counts += _write(session, writes, REPLANNED, now=now, actor=actor)
    schedule.materialised_until = max(window_end, schedule.materialised_until or window_end)
    session.add(schedule)
    return counts


def _reconcile(
    schedule: Schedule,
    task: Any,  # a row of _TASK_COLUMNS
    wanted: list[PlannedOccurrence],
    rows: list[Any],
    st: ScheduleTime,
    today: date,
    now: datetime,
    writes: _Writes,
) -> None:
    existing = {o.period_start: o for o in rows}
    by_start = {p.period_start: p for p in wanted}
    for start, planned in by_start.items():
        row = existing.get(start)
        if row is None:
            writes.added.append(_new_row(schedule, task, planned, st, now))
        elif (values := _replan(row, planned, st, today, now)) is not None:
            writes.updated.append(values)
    for start, row in existing.items():
        replannable = row.kind == DEADLINE or row.due_date >= today
        if start not in by_start and row.status == OPEN and replannable:
            writes.cancelled.append(row)


def _write(session: Session, writes: _Writes, reason: str, *, now: datetime, actor: str) -> Counts:
    """Inserts in bulk (skipping periods another process wrote meanwhile), updates by primary
    key in one executemany, cancellations in one UPDATE … WHERE id IN plus their audit events."""
    table = Occurrence.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    added = bulk_insert(session, Occurrence, writes.added, on_conflict=["task_id", "period_start"])
    if writes.updated:
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("_id"))
            .values({n: sa.bindparam(n) for n in _UPDATED})
        )
        connection.execute(statement, writes.updated)
    cancel_rows(session, writes.cancelled, reason, now=now, actor=actor)
    if writes.updated or writes.cancelled:
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Occurrence):  # ORM copies of these rows must re-read them
                session.expire(obj)
    return Counts(added, len(writes.updated), len(writes.cancelled))


def _new_row(
    schedule: Schedule, task: Any, planned: PlannedOccurrence, st: ScheduleTime, now: datetime
) -> dict[str, Any]:
    assert task.id is not None
    return {
        "task_id": task.id,
        "schedule_id": schedule.id,
        "kind": planned.kind,
        "period_start": planned.period_start,
        "period_end": planned.period_end,
        "due_date": planned.due_date,
        "due_at": st.due_at(planned.due_date),
        "times_required": planned.times_required,
        "times_done": 0,
        "status": OPEN,
        "reminder_step": -1,
        "escalation_step": -1,
        "escalation_repeats": 0,
        "created_at": now,
        "next_action_at": now,  # the engine plans its ladder at the next tick
    }


def _replan(
    row: Any, planned: PlannedOccurrence, st: ScheduleTime, today: date, now: datetime
) -> dict[str, Any] | None:
    """Move an open (or re-planned-away) row to the new plan; done rows are history.
    Returns the row's new values, or None when it stays as it is."""
    reopen = row.status == CANCELLED and row.status_reason in (REPLANNED, TASK_REMOVED)
    if row.status != OPEN and not reopen:
        return None
    if row.kind != DEADLINE and row.due_date < today and not reopen:
        return None
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
        return None
    return {
        "_id": row.id,
        "period_end": planned.period_end,
        "due_date": planned.due_date,
        "times_required": planned.times_required,
        "kind": planned.kind,
        # a new deadline at or after an approved extension makes the extension moot
        "extended_to": extended_to,
        "due_at": due_at,
        "status": OPEN if reopen else row.status,
        "status_reason": None if reopen else row.status_reason,
        "next_action_at": min(row.next_action_at or now, now),  # re-plan the ladder now
    }


def cancel_rows(
    session: Session, rows: list[Any], reason: str, *, now: datetime, actor: str
) -> None:
    """Cancel open rows (anything with id, schedule_id, task_id, due_date) in one UPDATE,
    with one audit event each."""
    if not rows:
        return
    table = Occurrence.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    ids = [r.id for r in rows]
    for chunk in range(0, len(ids), _CHUNK):
        connection.execute(
            sa.update(table)
            .where(table.c.id.in_(ids[chunk : chunk + _CHUNK]))
            .values(status=CANCELLED, status_reason=reason)
        )
    events = [
        {
            "at": now,
            "actor": actor,
            "action": "occurrence_cancelled",
            "schedule_id": getattr(r, "schedule_id", None),
            "task_id": r.task_id,
            "occurrence_id": r.id,
            "detail": {"reason": reason, "due_date": r.due_date.isoformat()},
        }
        for r in rows
    ]
    bulk_insert(session, AuditEvent, events, on_conflict=None)


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
