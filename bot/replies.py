"""What officials and leaders can do to an occurrence: done, progress, extension, not mine, nudge.

Chat adapters and the demo call these; each checks who may act, changes the occurrence,
records a Reply and an audit event, and queues whom to tell, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot.engine import effective_due, occurrence_payload
from bot.materialise import schedule_time
from bot.outbox import cancel_pending, enqueue, notification_row
from bot.roster import Roster
from bot.store.models import (
    DONE,
    OPEN,
    AuditEvent,
    Evidence,
    Occurrence,
    Person,
    Reply,
    Schedule,
    Task,
)


class ReplyRefused(Exception):
    """An action that is not allowed; ``code`` names the message template to show."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Via:
    """Through which channel an action came (chat, web, cli, system), and for chat on which
    platform and in answer to which message: written on every audit event."""

    channel: str = "chat"
    platform: str | None = None
    message_ref: str | None = None


SYSTEM = Via("system")


@dataclass(frozen=True)
class EvidenceIn:
    kind: str  # photo | document | text
    file_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    local_path: str | None = None


@dataclass
class _Case:
    occ: Occurrence
    task: Task
    schedule: Schedule
    roster: Roster
    person: Person
    via: Via = SYSTEM

    def payload(self, session: Session, now: datetime, **extra: Any) -> dict[str, Any]:
        st = schedule_time(self.schedule)
        base = occurrence_payload(
            self.schedule, self.occ, self.task, self.roster, st, st.local_date(now)
        )
        return {**base, "by": self.person.name, **extra}


def _case(session: Session, occurrence_id: int, person_id: int, via: Via | None = None) -> _Case:
    occ = session.get(Occurrence, occurrence_id)
    person = session.get(Person, person_id)
    if occ is None or person is None:
        raise ReplyRefused("not_found")
    task = session.get(Task, occ.task_id)
    schedule = session.get(Schedule, occ.schedule_id)
    assert task is not None and schedule is not None
    if person.schedule_id != occ.schedule_id:
        raise ReplyRefused("not_assigned")
    roster = Roster.cached(session, schedule)
    return _Case(occ, task, schedule, roster, person, via or SYSTEM)


def _chased(case: _Case) -> set[int]:
    """Who may answer for an occurrence: its assignees, responsible and lead officials."""
    assert case.task.id is not None
    roster = case.roster
    return set(
        roster.assignees(case.task.id)
        + roster.responsible(case.task.id)
        + roster.lead(case.task.id)
    )


def _require_open_and_assigned(case: _Case) -> None:
    if case.occ.status != OPEN:
        raise ReplyRefused("closed")
    if case.person.id not in _chased(case):
        raise ReplyRefused("not_assigned")


def check_can_answer(session: Session, occurrence_id: int, person_id: int) -> None:
    """ReplyRefused unless this person may answer this occurrence now (buttons ask first)."""
    _require_open_and_assigned(_case(session, occurrence_id, person_id))


def _audit(session: Session, case: _Case, action: str, now: datetime, **detail: Any) -> None:
    session.add(
        AuditEvent(
            at=now,
            actor=f"person:{case.person.id}",
            action=action,
            schedule_id=case.schedule.id,
            task_id=case.task.id,
            occurrence_id=case.occ.id,
            person_id=case.person.id,
            channel=case.via.channel,
            platform=case.via.platform,
            message_ref=case.via.message_ref,
            detail={"by": case.person.name, **detail},
        )
    )


def _tell(
    session: Session,
    case: _Case,
    kind: str,
    people: list[int],
    now: datetime,
    key: str,
    payload: dict[str, Any],
) -> None:
    st = schedule_time(case.schedule)
    not_before = st.hours.next_slot(now, st.tz, st.calendar)  # third parties hear in working hours
    enqueue(
        session,
        [
            notification_row(
                key=f"{kind}:{key}:{pid}",
                kind=kind,
                person_id=pid,
                not_before=not_before,
                now=now,
                schedule_id=case.schedule.id,
                occurrence_id=case.occ.id,
                payload=payload,
            )
            for pid in people
            if pid != case.person.id
        ],
    )


def complete(
    session: Session,
    *,
    occurrence_id: int,
    person_id: int,
    now: datetime,
    via: Via | None = None,
    note: str | None = None,
    evidence: list[EvidenceIn] | None = None,
) -> Reply:
    case = _case(session, occurrence_id, person_id, via)
    _require_open_and_assigned(case)
    evidence = evidence or []
    if (case.task.policy or {}).get("evidence") == "required" and not (note or evidence):
        raise ReplyRefused("evidence_required")
    reply = Reply(
        occurrence_id=occurrence_id, person_id=person_id, kind="done", note=note, created_at=now
    )
    session.add(reply)
    session.flush()
    assert reply.id is not None and case.task.id is not None
    for item in evidence:
        session.add(Evidence(reply_id=reply.id, created_at=now, **item.__dict__))
    occ = case.occ
    occ.times_done += 1
    finished = occ.times_done >= occ.times_required
    if finished:
        occ.status, occ.completed_at, occ.next_action_at = DONE, now, None
        cancel_pending(session, occurrence_id)
    session.add(occ)
    _audit(session, case, "reply_done", now, note=note, evidence=len(evidence), finished=finished)
    if finished and case.task.every not in (
        "day",
        "workday",
    ):  # leads need no note of daily routine
        st = schedule_time(case.schedule)
        payload = case.payload(
            session,
            now,
            note=note,
            evidence_count=len(evidence),
            completed_on=st.local_date(now).isoformat(),
        )
        informed = case.roster.lead(case.task.id) + case.roster.partners(case.task.id)
        _tell(session, case, "completed", informed, now, f"{occurrence_id}", payload)
    return reply


def report_progress(
    session: Session,
    *,
    occurrence_id: int,
    person_id: int,
    now: datetime,
    via: Via | None = None,
    note: str,
    percent: int | None = None,
) -> Reply:
    case = _case(session, occurrence_id, person_id, via)
    _require_open_and_assigned(case)
    if percent is not None and not 0 <= percent <= 100:
        raise ReplyRefused("bad_percent")
    reply = Reply(
        occurrence_id=occurrence_id,
        person_id=person_id,
        kind="progress",
        note=note,
        percent=percent,
        created_at=now,
    )
    session.add(reply)
    occ = case.occ
    if occ.kind == "check":  # an ongoing task's progress report *is* its completion for the period
        occ.status, occ.completed_at, occ.next_action_at, occ.times_done = (
            DONE,
            now,
            None,
            occ.times_required,
        )
        session.add(occ)
        cancel_pending(session, occurrence_id)
    _audit(session, case, "reply_progress", now, note=note, percent=percent)
    return reply


def request_extension(
    session: Session,
    *,
    occurrence_id: int,
    person_id: int,
    now: datetime,
    via: Via | None = None,
    new_date: date,
    reason: str | None,
) -> Reply:
    case = _case(session, occurrence_id, person_id, via)
    _require_open_and_assigned(case)
    if new_date <= effective_due(case.occ):
        raise ReplyRefused("extension_not_later")
    reply = Reply(
        occurrence_id=occurrence_id,
        person_id=person_id,
        kind="extension",
        note=reason,
        requested_date=new_date,
        created_at=now,
    )
    session.add(reply)
    session.flush()
    assert case.task.id is not None and reply.id is not None
    _audit(session, case, "extension_requested", now, requested=new_date.isoformat(), reason=reason)
    payload = case.payload(
        session, now, note=reason, requested_date=new_date.isoformat(), reply_id=reply.id
    )
    _tell(
        session,
        case,
        "extension_request",
        case.roster.lead(case.task.id),
        now,
        f"{reply.id}",
        payload,
    )
    return reply


def decide_extension(
    session: Session,
    *,
    reply_id: int,
    person_id: int,
    now: datetime,
    approve: bool,
    via: Via | None = None,
) -> Reply:
    reply = session.get(Reply, reply_id)
    if reply is None or reply.kind != "extension":
        raise ReplyRefused("not_found")
    case = _case(session, reply.occurrence_id, person_id, via)
    assert case.task.id is not None and reply.requested_date is not None
    if person_id not in case.roster.lead(case.task.id):
        raise ReplyRefused("not_lead")
    if reply.decision is not None or case.occ.status != OPEN:
        raise ReplyRefused("closed")
    if approve and reply.requested_date <= effective_due(case.occ):
        # the list moved the deadline past the request meanwhile: approving would shorten it
        raise ReplyRefused("extension_stale")
    reply.decision = "approved" if approve else "denied"
    reply.decided_by_id, reply.decided_at = person_id, now
    session.add(reply)
    occ = case.occ
    if approve:
        st = schedule_time(case.schedule)
        occ.extended_to = reply.requested_date
        occ.due_at = st.due_at(reply.requested_date)
        occ.next_action_at = now  # the engine re-plans the ladder from the new date
        session.add(occ)
        cancel_pending(session, occ.id or 0)
    _audit(
        session,
        case,
        "extension_" + reply.decision,
        now,
        requested=reply.requested_date.isoformat(),
    )
    payload = case.payload(
        session, now, approved=approve, requested_date=reply.requested_date.isoformat()
    )
    _tell(session, case, "extension_decision", [reply.person_id], now, f"{reply.id}", payload)
    return reply


def not_mine(
    session: Session,
    *,
    occurrence_id: int,
    person_id: int,
    now: datetime,
    note: str | None = None,
    via: Via | None = None,
) -> Reply:
    case = _case(session, occurrence_id, person_id, via)
    _require_open_and_assigned(case)
    reply = Reply(
        occurrence_id=occurrence_id, person_id=person_id, kind="not_mine", note=note, created_at=now
    )
    session.add(reply)
    session.flush()
    _audit(session, case, "reply_not_mine", now, note=note)
    payload = case.payload(session, now, note=note)
    _tell(session, case, "not_mine", case.roster.admins(), now, f"{reply.id}", payload)
    return reply


def nudge(
    session: Session,
    *,
    occurrence_id: int,
    person_id: int,
    now: datetime,
    via: Via | None = None,
) -> int:
    """催办: a leader re-sends the reminder to the assignees, with the leader's name."""
    case = _case(session, occurrence_id, person_id, via)
    assert case.task.id is not None
    roster = case.roster
    leaders = set(roster.lead(case.task.id) + roster.responsible(case.task.id) + roster.chief())
    if person_id not in leaders:
        raise ReplyRefused("not_leader")
    if case.occ.status != OPEN:
        raise ReplyRefused("closed")
    _audit(session, case, "nudge", now)
    payload = case.payload(session, now)
    stamp = now.strftime("%Y%m%d%H%M")
    _tell(
        session,
        case,
        "nudge",
        roster.assignees(case.task.id),
        now,
        f"{occurrence_id}:{person_id}:{stamp}",
        payload,
    )
    return len(roster.assignees(case.task.id))
