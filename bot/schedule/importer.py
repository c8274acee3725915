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

from sqlmodel import Session, select

from bot.materialise import TASK_REMOVED, Counts, cancel, materialise
from bot.schedule.format import ScheduleFile, TaskSpec
from bot.schedule.validate import content_hash
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
    _sync_tasks(session, spec, schedule, people, units, diff, now=now, actor=actor)
    session.flush()
    diff.occurrences += materialise(
        session, schedule, now=now, horizon_days=horizon_days, actor=actor
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
        rows = session.exec(select(UnitContact).where(UnitContact.unit_id == unit.id)).all()
        current = [r.person_id for r in sorted(rows, key=lambda r: r.position)]
        if current != wanted:
            for row in rows:
                session.delete(row)
            session.flush()
            for position, person_id in enumerate(wanted):
                assert unit.id is not None and person_id is not None
                session.add(UnitContact(unit_id=unit.id, person_id=person_id, position=position))
            if name not in diff.units_added:
                diff.units_changed.append(name)
    return existing


def _task_values(spec: ScheduleFile, task: TaskSpec, position: int) -> dict[str, Any]:
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
        "policy": spec.task_policy(task).model_dump(mode="json"),
        "spec": task.model_dump(mode="json", by_alias=True, exclude_none=True),
        "active": True,
    }


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
) -> None:
    existing = {t.ref: t for t in session.exec(select(Task).where(Task.schedule_id == schedule.id))}
    seen = set()
    for position, task_spec in enumerate(spec.tasks):
        seen.add(task_spec.ref)
        values = _task_values(spec, task_spec, position)
        task = existing.get(task_spec.ref)
        if task is None:
            task = Task(schedule_id=schedule.id, ref=task_spec.ref, **values)
            session.add(task)
            session.flush()
            diff.tasks_added.append(task_spec.ref)
        else:
            changed = [k for k, v in values.items() if k != "position" and getattr(task, k) != v]
            changed = [k for k in changed if k != "spec"] or (
                ["members"] if "spec" in changed else []
            )
            for key, value in values.items():
                setattr(task, key, value)
            session.add(task)
            if changed:
                diff.tasks_changed.append((task_spec.ref, changed))
                session.add(
                    AuditEvent(
                        at=now,
                        actor=actor,
                        action="task_changed",
                        schedule_id=schedule.id,
                        task_id=task.id,
                        detail={"ref": task.ref, "fields": changed},
                    )
                )
        _sync_members(session, task, task_spec, people, units)
    for ref, task in existing.items():
        if ref not in seen and task.active:
            task.active = False
            session.add(task)
            diff.tasks_removed.append(ref)
            session.add(
                AuditEvent(
                    at=now,
                    actor=actor,
                    action="task_removed",
                    schedule_id=schedule.id,
                    task_id=task.id,
                    detail={"ref": ref},
                )
            )
            open_rows = session.exec(
                select(Occurrence).where(Occurrence.task_id == task.id, Occurrence.status == OPEN)
            ).all()
            for row in open_rows:
                cancel(session, row, TASK_REMOVED, now=now, actor=actor)
                diff.occurrences.cancelled += 1


def _sync_members(
    session: Session, task: Task, spec: TaskSpec, people: dict[str, Person], units: dict[str, Unit]
) -> None:
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
    rows = session.exec(select(TaskMember).where(TaskMember.task_id == task.id)).all()
    current = [(r.role, r.person_id, r.unit_id) for r in sorted(rows, key=lambda r: r.position)]
    if current == wanted:
        return
    for row in rows:
        session.delete(row)
    session.flush()
    for position, (role, person_id, unit_id) in enumerate(wanted):
        assert task.id is not None
        session.add(
            TaskMember(
                task_id=task.id, role=role, person_id=person_id, unit_id=unit_id, position=position
            )
        )
