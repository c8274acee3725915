"""The audit export: every AuditEvent as a row an inspector can read.

Times are shown in the schedule's own timezone (the one its officials live in), never
UTC; people, tasks and occurrences are named rather than numbered.  Loading
(:func:`load_audit`) is apart from the pure row builder (:func:`audit_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlmodel import Session, col, select

from bot.reports.records import DEFAULT_TZ, require_schedule
from bot.store.models import AuditEvent, Occurrence, Person, Schedule, Task
from bot.texts import phrase

AUDIT_COLUMNS: tuple[str, ...] = (
    "at",
    "actor",
    "action",
    "schedule",
    "ref",
    "occurrence",
    "detail",
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # what Excel and WPS read as a date-time
PERSON_ACTOR = "person:"


@dataclass(frozen=True)
class AuditData:
    """The events plus what is needed to name their ids, read in one go."""

    events: list[AuditEvent]
    timezones: dict[str, str] = field(default_factory=dict)  # schedule id -> tz name
    people: dict[int, Person] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    occurrences: dict[int, Occurrence] = field(default_factory=dict)


def load_audit(
    session: Session, *, schedule_id: str | None = None, since: date | None = None
) -> AuditData:
    """Events of one schedule (or all), oldest first; ``since`` is a local calendar day.

    Events that carry no schedule (a chat binding, say) belong to a schedule through
    the person they concern.
    """
    if schedule_id:
        require_schedule(session, schedule_id)
    schedules = {s.id: s.timezone for s in session.exec(select(Schedule))}
    people = {p.id: p for p in session.exec(select(Person)) if p.id is not None}
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if schedule_id:
        own = [pid for pid, p in people.items() if p.schedule_id == schedule_id]
        query = query.where(
            or_(
                col(AuditEvent.schedule_id) == schedule_id,
                col(AuditEvent.schedule_id).is_(None) & col(AuditEvent.person_id).in_(own),
            )
        )
    if since is not None:
        # a day early in UTC covers every timezone; the exact cut is made per event below
        query = query.where(
            AuditEvent.at >= datetime.combine(since - timedelta(days=1), time(), UTC)
        )
    events = list(session.exec(query))
    data = AuditData(events, schedules, people)
    if since is not None:
        kept = [e for e in events if local_time(e, data).date() >= since]
        data = AuditData(kept, schedules, people)
    task_ids = {e.task_id for e in data.events if e.task_id is not None}
    occ_ids = {e.occurrence_id for e in data.events if e.occurrence_id is not None}
    if occ_ids:
        for occ in session.exec(select(Occurrence).where(col(Occurrence.id).in_(occ_ids))):
            assert occ.id is not None
            data.occurrences[occ.id] = occ
            task_ids.add(occ.task_id)
    if task_ids:
        for task in session.exec(select(Task).where(col(Task.id).in_(task_ids))):
            assert task.id is not None
            data.tasks[task.id] = task
    return data


def _timezone(event: AuditEvent, data: AuditData) -> ZoneInfo:
    name = data.timezones.get(event.schedule_id or "")
    if name is None and event.person_id in data.people:
        name = data.timezones.get(data.people[event.person_id].schedule_id)
    return ZoneInfo(name or DEFAULT_TZ)


def local_time(event: AuditEvent, data: AuditData) -> datetime:
    """The event's instant on the wall clock of the schedule it belongs to."""
    return event.at.astimezone(_timezone(event, data))


def _actor(actor: str, data: AuditData, lang: str) -> str:
    name = None
    if actor.startswith(PERSON_ACTOR):
        ident = actor[len(PERSON_ACTOR) :]
        person = data.people.get(int(ident)) if ident.isdigit() else None
        name = person.name if person else None
    return phrase("audit", "actor", lang, actor=actor, name=name)


def _ref(event: AuditEvent, data: AuditData) -> str | None:
    task = data.tasks.get(event.task_id or 0)
    if task is None and event.occurrence_id in data.occurrences:
        task = data.tasks.get(data.occurrences[event.occurrence_id].task_id)
    if task is not None:
        return task.ref
    ref = (event.detail or {}).get("ref")
    return str(ref) if ref is not None else None


def _local_value(value: Any, tz: ZoneInfo) -> Any:
    """An instant written into a detail (``expires_at``) on the schedule's wall clock."""
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            return value
        if instant.tzinfo is not None:
            return instant.astimezone(tz).strftime(TIME_FORMAT[:-3])
    return value


def _detail_items(event: AuditEvent, data: AuditData) -> list[tuple[str, Any]]:
    """The detail's keys in order, the concerned person and message first; blanks dropped.

    The person concerned is left out when they are the actor (the 操作者 column names them),
    and said once when the detail names them too."""
    items: list[tuple[str, Any]] = []
    person = data.people.get(event.person_id or 0)
    name = person.name if person else event.person_id
    if event.person_id is not None and event.actor != f"{PERSON_ACTOR}{event.person_id}":
        items.append(("person", name))
    if event.notification_id is not None:
        items.append(("notification", event.notification_id))
    tz = _timezone(event, data)
    for key, value in (event.detail or {}).items():
        if key in ("ref", "by"):
            continue  # the task and the actor have columns of their own
        if key == "person" and (value == name or value == event.person_id):
            continue  # already said, or the actor
        if value is None or value == "" or value == [] or value == {}:
            continue
        items.append((key, _local_value(value, tz)))
    return items


def audit_rows(data: AuditData, lang: str) -> list[tuple[str, ...]]:
    """One row per event, in :data:`AUDIT_COLUMNS` order; pure."""
    rows = []
    for event in data.events:
        occ = data.occurrences.get(event.occurrence_id or 0)
        rows.append(
            (
                local_time(event, data).strftime(TIME_FORMAT),
                _actor(event.actor, data, lang),
                phrase("audit", "action", lang, action=event.action),
                event.schedule_id or "",
                _ref(event, data) or "",
                phrase("audit", "occurrence", lang, occ=occ) if occ else "",
                phrase("audit", "detail", lang, items=_detail_items(event, data)),
            )
        )
    return rows


def audit_headers(lang: str) -> list[str]:
    return [phrase("audit", "column", lang, key=key) for key in AUDIT_COLUMNS]
