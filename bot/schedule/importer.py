"""Apply a validated schedule to the store in one transaction and say what changed.

Re-importing the same ``schedule:`` id updates it in place: an unchanged file writes
nothing; a changed deadline re-plans open occurrences and keeps what was done; a removed
task is deactivated, its open occurrences cancelled (each with an audit event), its
history kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.materialise import TASK_REMOVED, Counts, cancel_rows, materialise
from bot.schedule.format import ScheduleFile, TaskSpec
from bot.schedule.validate import content_hash
from bot.store.db import bulk_insert
from bot.store.models import (
    OPEN,
    AuditEvent,
    Occurrence,
    Person,
    Schedule,
    Task,
    TaskMember,
    Unit,
    UnitContact,
)


@dataclass
class ImportDiff:
    schedule_id: str
    created: bool = False
    unchanged: bool = False
    tasks_added: list[str] = field(default_factory=list)
    tasks_changed: list[tuple[str, list[str]]] = field(default_factory=list)
    tasks_removed: list[str] = field(default_factory=list)
    people_added: list[str] = field(default_factory=list)
    people_changed: list[str] = field(default_factory=list)
    people_removed: list[str] = field(default_factory=list)
    units_added: list[str] = field(default_factory=list)
    units_changed: list[str] = field(default_factory=list)
    units_removed: list[str] = field(default_factory=list)
    occurrences: Counts = field(default_factory=Counts)

    def summary(self) -> dict[str, Any]:
        return {
            "tasks_added": self.tasks_added,
            "tasks_changed": [ref for ref, _ in self.tasks_changed],
            "tasks_removed": self.tasks_removed,
            "people_added": self.people_added,
            "units_added": self.units_added,
            "occurrences_added": self.occurrences.added,
            "occurrences_updated": self.occurrences.updated,
            "occurrences_cancelled": self.occurrences.cancelled,
        }


def import_schedule(
    session: Session,
    spec: ScheduleFile,
    *,
    now: datetime,
    horizon_days: int,
    actor: str = "cli",
    source_file: str | None = None,
) -> ImportDiff:
    """The caller owns the transaction (``session_scope``): any error leaves nothing behind."""
    digest = content_hash(spec)
    schedule = session.get(Schedule, spec.schedule)
    diff = ImportDiff(spec.schedule, created=schedule is None)
    if schedule is not None and schedule.content_hash == digest:
        diff.unchanged = True
        return diff
    if schedule is None:
        schedule = Schedule(
            id=spec.schedule,
            title=spec.title,
            content_hash=digest,
            imported_at=now,
            planned_from=_local_today(spec, now),
        )
    timing_before = _schedule_timing(schedule)
    schedule.title, schedule.issued_by, schedule.issued_on = (
        spec.title,
        spec.issued_by,
        spec.issued_on,
    )
    schedule.timezone, schedule.calendar, schedule.working_hours = (
        spec.timezone,
        spec.calendar,
        spec.working_hours,
    )
    schedule.holidays = [d.isoformat() for d in spec.holidays]
    schedule.workdays = [d.isoformat() for d in spec.workdays]
    schedule.policy = spec.policy.model_dump(mode="json")
    schedule.content_hash, schedule.imported_at, schedule.source_file = digest, now, source_file
    session.add(schedule)
    session.flush()

    people = _sync_people(session, spec, diff)
    units = _sync_units(session, spec, people, diff)
    retimed, fresh = _sync_tasks(session, spec, schedule, people, units, diff, now=now, actor=actor)
    session.flush()
    # only what moved is re-planned, unless the schedule's own time changed (every due_at)
    everything = diff.created or timing_before != _schedule_timing(schedule)
    diff.occurrences += materialise(
        session,
        schedule,
        now=now,
        horizon_days=horizon_days,
        actor=actor,
        only=None if everything else retimed,
        fresh=fresh,
    )
    session.add(
        AuditEvent(
            at=now,
            actor=actor,
            action="schedule_imported",
            schedule_id=schedule.id,
            detail={"file": source_file, "created": diff.created, **diff.summary()},
        )
    )
    return diff


def _schedule_timing(schedule: Schedule) -> tuple[Any, ...]:
    """What every task's occurrences depend on besides the task itself."""
    return (
        schedule.issued_on,
        schedule.timezone,
        schedule.calendar,
        schedule.working_hours,
        schedule.holidays,
        schedule.workdays,
        schedule.planned_from,
    )


def _local_today(spec: ScheduleFile, now: datetime) -> date:
    """The import day in the schedule's own timezone: occurrences are planned from here on."""
    return now.astimezone(ZoneInfo(spec.timezone)).date()


def _sync_people(session: Session, spec: ScheduleFile, diff: ImportDiff) -> dict[str, Person]:
    existing = {
        p.name: p for p in session.exec(select(Person).where(Person.schedule_id == spec.schedule))
    }
    admins = set(spec.admins)
    for name, person_spec in spec.people.items():
        person = existing.get(name)
        values = {
            "title": person_spec.title,
            "chief": person_spec.chief,
            "admin": name in admins,
            "active": True,
            "accounts": person_spec.accounts() or None,
        }
        if person is None:
            person = Person(schedule_id=spec.schedule, name=name, **values)
            existing[name] = person
            diff.people_added.append(name)
        elif any(getattr(person, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(person, key, value)
            diff.people_changed.append(name)
        session.add(person)
    for name, person in existing.items():
        if name not in spec.people and person.active:
            person.active = False
            session.add(person)
            diff.people_removed.append(name)
    session.flush()
    for name, person_spec in spec.people.items():
        boss = existing[person_spec.reports_to].id if person_spec.reports_to else None
        if existing[name].reports_to_id != boss:
            existing[name].reports_to_id = boss
            session.add(existing[name])
    return existing


def _sync_units(
    session: Session, spec: ScheduleFile, people: dict[str, Person], diff: ImportDiff
) -> dict[str, Unit]:
    existing = {
        u.name: u for u in session.exec(select(Unit).where(Unit.schedule_id == spec.schedule))
    }
    for name in spec.units:
        if name not in existing:
            existing[name] = Unit(schedule_id=spec.schedule, name=name)
            diff.units_added.append(name)
        existing[name].active = True
        session.add(existing[name])
    for name, unit in existing.items():
        if name not in spec.units and unit.active:
            unit.active = False
            session.add(unit)
            diff.units_removed.append(name)
    session.flush()
    for name, unit_spec in spec.units.items():
        unit = existing[name]
        wanted = [people[c].id for c in unit_spec.contacts]
        if replace_contacts(session, unit, wanted) and name not in diff.units_added:
            diff.units_changed.append(name)
    return existing


def replace_contacts(session: Session, unit: Unit, wanted: list[int | None]) -> bool:
    """Make ``wanted`` (person ids, in order) the unit's contacts; False when they already are."""
    rows = session.exec(select(UnitContact).where(UnitContact.unit_id == unit.id)).all()
    current = [r.person_id for r in sorted(rows, key=lambda r: r.position)]
    if current == wanted:
        return False
    for row in rows:
        session.delete(row)
    session.flush()
    for position, person_id in enumerate(wanted):
        assert unit.id is not None and person_id is not None
        session.add(UnitContact(unit_id=unit.id, person_id=person_id, position=position))
    return True


def _task_values(
    spec: ScheduleFile, task: TaskSpec, position: int, shared: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``shared``: the schedule's own policy dumped once, for every task that keeps it."""
    if task.policy or shared is None:
        policy = spec.task_policy(task).model_dump(mode="json")
    else:
        policy = shared
    return {
        "title": task.title,
        "detail": task.detail,
        "position": position,
        "kind": task.kind,
        "due": task.due_date,
        "every": task.every,
        "times": task.times,
        "by": task.by,
        "start": task.start,
        "until": task.until,
        "source": task.source,
        "policy": policy,
        "spec": task.model_dump(mode="json", by_alias=True, exclude_none=True),
        "active": True,
    }


_TIMING_FIELDS = {"kind", "due", "every", "times", "by", "start", "until", "policy", "active"}


def _sync_tasks(
    session: Session,
    spec: ScheduleFile,
    schedule: Schedule,
    people: dict[str, Person],
    units: dict[str, Unit],
    diff: ImportDiff,
    *,
    now: datetime,
    actor: str,
) -> tuple[set[int], set[int]]:
    """Returns the ids of the tasks whose occurrences may have moved (new or re-timed), and
    of the new ones.
    New tasks are inserted in bulk as plain rows (10,000 ORM objects cost seconds), changed
    ones are updated through the ORM."""
    existing = {t.ref: t for t in session.exec(select(Task).where(Task.schedule_id == schedule.id))}
    seen = set()
    tasks: list[tuple[str, TaskSpec]] = []
    retimed: list[Task] = []
    added: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    shared = spec.policy.model_dump(mode="json")
    for position, task_spec in enumerate(spec.tasks):
        seen.add(task_spec.ref)
        values = _task_values(spec, task_spec, position, shared)
        task = existing.get(task_spec.ref)
        if task is None:
            added.append({"schedule_id": schedule.id, "ref": task_spec.ref, **values})
            diff.tasks_added.append(task_spec.ref)
        else:
            changed = [k for k, v in values.items() if k != "position" and getattr(task, k) != v]
            changed = [k for k in changed if k != "spec"] or (
                ["members"] if "spec" in changed else []
            )
            for key, value in values.items():
                if getattr(task, key) != value:
                    setattr(task, key, value)
            if changed:
                if _TIMING_FIELDS.intersection(changed):
                    retimed.append(task)
                diff.tasks_changed.append((task_spec.ref, changed))
                events.append(
                    _audit_row(
                        now, actor, "task_changed", task, {"ref": task.ref, "fields": changed}
                    )
                )
        tasks.append((task_spec.ref, task_spec))
    session.flush()
    # as rows, not ORM objects: 1,000 moved deadlines are 1,000 events (on PostgreSQL the
    # ORM's multi-row INSERT … RETURNING of them cost more than re-planning their rows)
    bulk_insert(session, AuditEvent, events, on_conflict=None)
    # a list created by this transaction has no tasks anyone else could have written
    bulk_insert(session, Task, added, on_conflict=None if diff.created else ["schedule_id", "ref"])
    table = Task.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.ref, table.c.id).where(table.c.schedule_id == schedule.id)
    task_ids: dict[str, int] = {ref: i for ref, i in session.connection().execute(query)}
    _sync_members(session, schedule, [(task_ids[ref], t) for ref, t in tasks], people, units)
    removed = [t for ref, t in existing.items() if ref not in seen and t.active]
    for task in removed:
        task.active = False
        diff.tasks_removed.append(task.ref)
    if removed:
        session.flush()
        gone = [_audit_row(now, actor, "task_removed", t, {"ref": t.ref}) for t in removed]
        bulk_insert(session, AuditEvent, gone, on_conflict=None)
        table = Occurrence.__table__  # type: ignore[attr-defined]
        ids = [t.id for t in removed]
        open_rows = [
            row
            for chunk in range(0, len(ids), 500)
            for row in session.connection().execute(
                sa.select(table.c.id, table.c.schedule_id, table.c.task_id, table.c.due_date)
                .where(table.c.task_id.in_(ids[chunk : chunk + 500]), table.c.status == OPEN)
                .order_by(table.c.id)
            )
        ]
        cancel_rows(session, open_rows, TASK_REMOVED, now=now, actor=actor)
        diff.occurrences.cancelled += len(open_rows)
    fresh = {task_ids[row["ref"]] for row in added}
    return {t.id for t in retimed if t.id is not None} | fresh, fresh


def _audit_row(
    now: datetime, actor: str, action: str, task: Task, detail: dict[str, Any]
) -> dict[str, Any]:
    """One task's audit event as a row for ``bulk_insert``."""
    return {
        "at": now,
        "actor": actor,
        "action": action,
        "schedule_id": task.schedule_id,
        "task_id": task.id,
        "detail": detail,
    }


def _wanted_members(
    spec: TaskSpec, people: dict[str, Person], units: dict[str, Unit]
) -> list[tuple[str, int | None, int | None]]:
    wanted: list[tuple[str, int | None, int | None]] = []
    for role, names in (
        ("lead", spec.lead),
        ("responsible", spec.responsible),
        ("unit", spec.units),
        ("partner", spec.partners),
    ):
        for name in names:
            person, unit = people.get(name), units.get(name)
            wanted.append(
                (
                    role,
                    person.id if person and role != "unit" else None,
                    unit.id if unit and (role == "unit" or person is None) else None,
                )
            )
    return wanted


def _sync_members(
    session: Session,
    schedule: Schedule,
    tasks: list[tuple[int, TaskSpec]],
    people: dict[str, Person],
    units: dict[str, Unit],
) -> None:
    """Members of every task read in one query and compared as lists; a task whose members
    differ gets its rows replaced, all such tasks in one DELETE and one INSERT."""
    table = TaskMember.__table__  # type: ignore[attr-defined]
    tasks_table = Task.__table__  # type: ignore[attr-defined]
    current: dict[int, list[tuple[str, int | None, int | None]]] = {}
    query = (
        sa.select(table.c.task_id, table.c.role, table.c.person_id, table.c.unit_id)
        .join(tasks_table, tasks_table.c.id == table.c.task_id)
        .where(tasks_table.c.schedule_id == schedule.id)
        .order_by(table.c.task_id, table.c.position)
    )
    for task_id, role, person_id, unit_id in session.connection().execute(query):
        current.setdefault(task_id, []).append((role, person_id, unit_id))
    stale: list[int] = []
    rows: list[dict[str, Any]] = []
    for task_id, task_spec in tasks:
        wanted = _wanted_members(task_spec, people, units)
        if current.get(task_id, []) == wanted:
            continue
        if task_id in current:
            stale.append(task_id)
        rows.extend(
            {"task_id": task_id, "role": r, "person_id": p, "unit_id": u, "position": i}
            for i, (r, p, u) in enumerate(wanted)
        )
    connection = session.connection()
    for chunk in range(0, len(stale), 500):
        connection.execute(sa.delete(table).where(table.c.task_id.in_(stale[chunk : chunk + 500])))
    bulk_insert(session, TaskMember, rows, on_conflict=None)
