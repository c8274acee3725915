"""Read-only questions the chat asks the store: who is this person, what is on their plate,
what is overdue under a leader, which occurrence a quoted reminder was about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from bot import digest as digests
from bot.engine import digest_item, effective_due
from bot.materialise import schedule_time
from bot.messages import ANSWERABLE
from bot.occurrences import ScheduleTime
from bot.roster import Roster
from bot.store.models import (
    OPEN,
    ChatBinding,
    Delivery,
    Notification,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
    TaskMember,
)

OFFICIAL, LEADER, ADMIN = "official", "leader", "admin"
LEADING_ROLES = ("lead", "responsible")


def roles(session: Session, person: Person) -> set[str]:
    """official always; leader: lead or responsible of an active task, or chief; admin."""
    found = {OFFICIAL}
    if person.admin:
        found.add(ADMIN)
    if person.chief:
        found.add(LEADER)
    else:
        leading = session.exec(
            select(TaskMember.id)
            .join(Task, col(Task.id) == TaskMember.task_id)
            .where(
                TaskMember.person_id == person.id,
                col(TaskMember.role).in_(LEADING_ROLES),
                col(Task.active).is_(True),
            )
            .limit(1)
        ).first()
        if leading is not None:
            found.add(LEADER)
    return found


def schedule_clock(session: Session, schedule_id: str) -> tuple[Schedule, ScheduleTime]:
    schedule = session.get(Schedule, schedule_id)
    assert schedule is not None
    return schedule, schedule_time(schedule)


def view(occ: Occurrence, task: Task, st: ScheduleTime, today: date) -> dict[str, Any]:
    """What chat templates show of an occurrence (the shape of the outbox payloads)."""
    due = effective_due(occ)
    return {
        "id": occ.id,
        "ref": task.ref,
        "title": task.title,
        "occurrence_kind": occ.kind,
        "due_date": due.isoformat(),
        "original_due": occ.due_date.isoformat() if occ.extended_to else None,
        "times_done": occ.times_done,
        "times_required": occ.times_required,
        "overdue_days": st.calendar.workdays_after(due, today) if due < today else 0,
        "evidence": (task.policy or {}).get("evidence", "optional"),
        "status": occ.status,
    }


def occurrence_view(session: Session, occurrence_id: int, today: date) -> dict[str, Any] | None:
    occ = session.get(Occurrence, occurrence_id)
    task = session.get(Task, occ.task_id) if occ else None
    if occ is None or task is None:
        return None
    _, st = schedule_clock(session, occ.schedule_id)
    return view(occ, task, st, today)


@dataclass(frozen=True)
class Listing:
    rows: list[dict[str, Any]]
    more: int


def my_items(
    session: Session, person: Person, today: date, *, overdue_only: bool, limit: int
) -> Listing:
    """Open occurrences this person is reminded of, whose period has begun, soonest first
    (then by task number: 7.2 before 50.1)."""
    roster = Roster.load(session, person.schedule_id)
    _, st = schedule_clock(session, person.schedule_id)
    mine = [tid for tid in roster.members if person.id in roster.assignees(tid)]
    if not mine:
        return Listing([], 0)
    pairs = session.exec(
        select(Occurrence, Task)
        .join(Task, col(Task.id) == Occurrence.task_id)
        .where(
            col(Occurrence.task_id).in_(mine),
            Occurrence.status == OPEN,
            col(Task.active).is_(True),
            Occurrence.period_start <= today,
        )
    ).all()
    keyed = sorted(
        ((occ, task) for occ, task in pairs if not overdue_only or effective_due(occ) < today),
        key=lambda pair: (effective_due(pair[0]), digests.ref_key(pair[1].ref), pair[0].id or 0),
    )
    rows = [view(occ, task, st, today) for occ, task in keyed[:limit]]
    return Listing(rows, max(len(keyed) - limit, 0))


def leader_digest(session: Session, person: Person, today: date) -> dict[str, Any]:
    """督办汇总 on demand: what is overdue now under this leader (everything, for the chief
    and admins), as the payload the digest template and its 催办 buttons expect."""
    schedule, st = schedule_clock(session, person.schedule_id)
    roster = Roster.load(session, person.schedule_id)
    whole = person.chief or person.admin
    scope = (
        None
        if whole
        else {
            tid
            for tid in roster.members
            if person.id in roster.lead(tid) or person.id in roster.responsible(tid)
        }
    )
    pairs = session.exec(
        select(Occurrence, Task)
        .join(Task, col(Task.id) == Occurrence.task_id)
        .where(
            Occurrence.schedule_id == schedule.id,
            Occurrence.status == OPEN,
            col(Task.active).is_(True),
        )
    ).all()
    items = []
    for occ, task in pairs:
        assert occ.id is not None and task.id is not None
        if (scope is not None and task.id not in scope) or effective_due(occ) >= today:
            continue
        items.append(digest_item(occ, task, roster, st))
    content = digests.build(items, today=today, since=today, cal=st.calendar)
    return {
        "schedule": schedule.title,
        "date": today.isoformat(),
        "whole": whole,
        **content.as_payload(),
    }


def quoted_occurrence(
    session: Session, person: Person, message_ref: str, platform: str | None = None
) -> int | None:
    """The occurrence a message we sent this person was about, from its message id (a message
    that carried several items names none: the person is asked which)."""
    query = (
        select(Notification)
        .join(Delivery, col(Delivery.bundle_id) == Notification.bundle_id)
        .join(ChatBinding, col(ChatBinding.id) == Delivery.binding_id)
        .where(
            Delivery.message_ref == message_ref,
            ChatBinding.identity_id == person.identity_id,
            col(Notification.occurrence_id).is_not(None),
            col(Notification.kind).in_(ANSWERABLE),
        )
        .order_by(col(Delivery.id).desc())
    )
    if platform is not None:
        query = query.where(Delivery.platform == platform)
    rows = session.exec(query.limit(2)).all()
    occurrences = {row.occurrence_id for row in rows}
    return rows[0].occurrence_id if len(occurrences) == 1 else None


def person_by_name(session: Session, schedule_id: str, name: str) -> Person | None:
    return session.exec(
        select(Person).where(
            Person.schedule_id == schedule_id, Person.name == name, col(Person.active).is_(True)
        )
    ).first()


OCCURRENCE_ACTIONS = ("done", "done_now", "progress", "extend", "not_mine", "nudge")
REPLY_ACTIONS = ("approve", "deny")


def acting_person(session: Session, person: Person, action: str, ref: int) -> Person:
    """The Person row a button acts as: a human on several lists answers an item of one list
    as that list names them (its roles and rights), whichever list the chat was bound from."""
    schedule_id: str | None = None
    if action in OCCURRENCE_ACTIONS:
        occ = session.get(Occurrence, ref)
        schedule_id = occ.schedule_id if occ else None
    elif action in REPLY_ACTIONS:
        reply = session.get(Reply, ref)
        occ = session.get(Occurrence, reply.occurrence_id) if reply else None
        schedule_id = occ.schedule_id if occ else None
    if schedule_id is None or schedule_id == person.schedule_id or person.identity_id is None:
        return person
    other = session.exec(
        select(Person).where(
            Person.identity_id == person.identity_id,
            Person.schedule_id == schedule_id,
            col(Person.active).is_(True),
        )
    ).first()
    return other or person
