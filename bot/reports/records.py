"""Read what the exports need from the store into plain, immutable records.

Everything a report shows is decided later by pure functions; this module only queries,
so a report is one consistent read of the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.materialise import schedule_time
from bot.occurrences import ScheduleTime
from bot.roster import Roster
from bot.store.models import Evidence, Occurrence, Person, Reply, Schedule, Task

DEFAULT_TZ: str = Schedule.model_fields["timezone"].default


class UnknownSchedule(LookupError):
    """Raised when ``--schedule`` names a schedule that was never imported."""

    def __init__(self, schedule_id: str, known: list[str]) -> None:
        super().__init__(schedule_id)
        self.schedule_id = schedule_id
        self.known = known  # the ids that do exist, to show instead


def known_schedules(session: Session) -> list[str]:
    return list(session.exec(select(Schedule.id).order_by(Schedule.id)))


def require_schedule(session: Session, schedule_id: str) -> None:
    """UnknownSchedule (with the known ids) unless a schedule of this id was imported."""
    if session.get(Schedule, schedule_id) is None:
        raise UnknownSchedule(schedule_id, known_schedules(session))


@dataclass(frozen=True)
class ReplyRecord:
    """One answer to an occurrence, with who gave it and how much evidence came with it."""

    id: int
    occurrence_id: int
    kind: str
    note: str | None
    percent: int | None
    requested_date: date | None
    decision: str | None
    decided_by: str | None  # who approved or denied an extension
    person: str
    created_at: datetime
    evidence: int


@dataclass(frozen=True)
class TaskRecord:
    """A task with its people resolved to names and all its occurrences and replies."""

    task: Task
    lead: tuple[str, ...]
    responsible: tuple[str, ...]
    assignees: tuple[str, ...]
    units: tuple[str, ...]
    partners: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]
    replies: tuple[ReplyRecord, ...]


@dataclass(frozen=True)
class ScheduleRecord:
    schedule: Schedule
    time: ScheduleTime
    tasks: tuple[TaskRecord, ...]


def _schedules(session: Session, schedule_id: str | None) -> list[Schedule]:
    query = select(Schedule).order_by(Schedule.id)
    if schedule_id:
        query = query.where(Schedule.id == schedule_id)
    if schedule_id:
        require_schedule(session, schedule_id)
    return list(session.exec(query))


def partner_names(roster: Roster, task_id: int) -> list[str]:
    """配合单位 as written: partner units and partner people by name (Roster gives contacts)."""
    names: list[str] = []
    for member in roster.members.get(task_id, []):
        if member.role != "partner":
            continue
        if member.unit_id is not None and member.unit_id in roster.unit_names:
            names.append(roster.unit_names[member.unit_id])
        elif member.person_id is not None and member.person_id in roster.people:
            names.append(roster.people[member.person_id].name)
    return names


def load_schedule_record(
    session: Session, schedule: Schedule, only: Collection[int] | None = None
) -> ScheduleRecord:
    """One schedule: active tasks in list order, then removed ones (their history stays).

    ``only``: just these task ids (the web dashboard re-reads the tasks that changed)."""
    roster = Roster.cached(session, schedule)  # changes only with an import (its stamp)
    picked = [] if only is None else [col(Occurrence.task_id).in_(list(only))]
    tasks = list(
        session.exec(
            select(Task)
            .where(Task.schedule_id == schedule.id)
            .where(*([] if only is None else [col(Task.id).in_(list(only))]))
            .order_by(col(Task.active).desc(), Task.position, Task.id)
        )
    )
    occurrences: dict[int, list[Occurrence]] = defaultdict(list)
    for occ in session.exec(
        select(Occurrence)
        .where(Occurrence.schedule_id == schedule.id, *picked)
        .order_by(Occurrence.period_start, Occurrence.id)
    ):
        occurrences[occ.task_id].append(occ)
    evidence: dict[int, int] = {
        reply_id: count
        for reply_id, count in session.exec(
            select(Evidence.reply_id, func.count(col(Evidence.id)))
            .join(Reply, col(Reply.id) == Evidence.reply_id)
            .join(Occurrence, col(Occurrence.id) == Reply.occurrence_id)
            .where(Occurrence.schedule_id == schedule.id, *picked)
            .group_by(Evidence.reply_id)
        )
    }
    people = {p.id: p.name for p in session.exec(select(Person))}
    replies: dict[int, list[ReplyRecord]] = defaultdict(list)
    for reply, task_id in session.exec(
        select(Reply, Occurrence.task_id)
        .join(Occurrence, col(Occurrence.id) == Reply.occurrence_id)
        .where(Occurrence.schedule_id == schedule.id, *picked)
        .order_by(Reply.created_at, Reply.id)
    ):
        assert reply.id is not None
        replies[task_id].append(
            ReplyRecord(
                id=reply.id,
                occurrence_id=reply.occurrence_id,
                kind=reply.kind,
                note=reply.note,
                percent=reply.percent,
                requested_date=reply.requested_date,
                decision=reply.decision,
                decided_by=(
                    people.get(reply.decided_by_id, str(reply.decided_by_id))
                    if reply.decided_by_id is not None
                    else None
                ),
                person=people.get(reply.person_id, str(reply.person_id)),
                created_at=reply.created_at,
                evidence=evidence.get(reply.id, 0),
            )
        )
    records = []
    for task in tasks:
        assert task.id is not None
        records.append(
            TaskRecord(
                task=task,
                lead=tuple(roster.names(roster.lead(task.id))),
                responsible=tuple(roster.names(roster.responsible(task.id))),
                assignees=tuple(roster.names(roster.assignees(task.id))),
                units=tuple(roster.unit_list(task.id)),
                partners=tuple(partner_names(roster, task.id)),
                occurrences=tuple(occurrences.get(task.id, [])),
                replies=tuple(replies.get(task.id, [])),
            )
        )
    return ScheduleRecord(schedule, schedule_time(schedule), tuple(records))


def load_records(session: Session, schedule_id: str | None = None) -> list[ScheduleRecord]:
    """Every schedule (or the one named), ordered by id so exports are reproducible."""
    return [load_schedule_record(session, s) for s in _schedules(session, schedule_id)]
