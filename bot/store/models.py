"""The tables.  The database is the single source of truth: the schedule *is* these rows.

Instants are aware UTC (:class:`UTCDateTime`); calendar days are plain dates in the
schedule's own timezone.  Status strings are small closed sets named in DESIGN.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from bot.store.types import JSONText, JSONType, UTCDateTime

OPEN = "open"
DONE = "done"
CANCELLED = "cancelled"


def _json(nullable: bool = True, *, kind: Any = JSONType) -> Any:
    return Field(default=None, sa_column=Column(kind, nullable=nullable))


class Schedule(SQLModel, table=True):
    """One loaded list (责任清单); re-importing the same id updates it in place."""

    id: str = Field(primary_key=True, max_length=100)
    title: str
    issued_by: str | None = None
    issued_on: date | None = None
    timezone: str = "Asia/Shanghai"
    calendar: str = "cn"
    working_hours: str = "08:30-18:00"
    holidays: list[str] | None = _json()
    workdays: list[str] | None = _json()
    policy: dict[str, Any] | None = _json()
    source_file: str | None = None
    content_hash: str = Field(max_length=64)
    planned_from: date = Field(description="first day occurrences are materialised for")
    materialised_until: date | None = None
    digest_planned_on: date | None = None
    imported_at: datetime = Field(sa_type=UTCDateTime)


class Identity(SQLModel, table=True):
    """One human behind the Person rows of several lists: an official on three lists is three
    Person rows (titles and admin rights are per list) and one identity, whose chat bindings
    reach them for every list.  Created with the first Person row; merged when two rows turn
    out to be the same human (the same platform account binds both)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Person(SQLModel, table=True):
    """A person as one list names them (people: in the schedule file)."""

    __table_args__ = (UniqueConstraint("schedule_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: str = Field(foreign_key="schedule.id", index=True)
    name: str = Field(max_length=100)
    title: str | None = None
    chief: bool = False
    admin: bool = False
    reports_to_id: int | None = Field(default=None, foreign_key="person.id")
    active: bool = True
    lang: str | None = None
    identity_id: int | None = Field(default=None, foreign_key="identity.id", index=True)
    # platform accounts the schedule declares (dingtalk / wecom user ids, mobile), for binding
    # without invites; {"dingtalk": "manager4220", "mobile": "138…"}
    accounts: dict[str, Any] | None = _json()


class Unit(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("schedule_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: str = Field(foreign_key="schedule.id", index=True)
    name: str = Field(max_length=200)
    active: bool = True


class UnitContact(SQLModel, table=True):
    """联络员: the people who receive a unit's reminders."""

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    position: int = 0


class Task(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("schedule_id", "ref"),
        # what an occurrence's one foreign key (its task, within its schedule) refers to
        UniqueConstraint("id", "schedule_id", name="uq_task_id_schedule"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: str = Field(foreign_key="schedule.id", index=True)
    ref: str = Field(max_length=20)
    position: int = 0
    title: str
    detail: str | None = Field(default=None, sa_column=Column(Text))
    kind: str = Field(max_length=10, description="deadline | recurring | ongoing")
    due: date | None = None
    every: str | None = None
    times: int = 1
    by: str = "end"
    start: date | None = None
    until: date | None = None
    policy: dict[str, Any] | None = _json()
    source: str | None = None
    spec: dict[str, Any] | None = _json()
    active: bool = True


class TaskMember(SQLModel, table=True):
    """A person or unit in one role of a task: lead, responsible, unit, partner."""

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    role: str = Field(max_length=12)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    position: int = 0


class Occurrence(SQLModel, table=True):
    """One dated instance of a task: a deadline, one period of a recurrence, or a progress check."""

    __table_args__ = (
        UniqueConstraint("task_id", "period_start"),  # also the index for reads by task
        # one check per inserted row instead of two (task, schedule), and the row's schedule
        # is its task's: per-row key checks were half of PostgreSQL's COPY of 100k rows
        ForeignKeyConstraint(
            ["task_id", "schedule_id"],
            ["task.id", "task.schedule_id"],
            name="fk_occurrence_task_schedule",
        ),
        # a recurring task's open overdue periods, counted when planning: a range of this
        # index per task, not every open row of the task (migration 0008)
        Index(
            "ix_occurrence_open_task_due",
            "task_id",
            "due_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index(
            "ix_occurrence_next_action",
            "next_action_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int  # with schedule_id: the task (see __table_args__)
    schedule_id: str = Field(index=True)
    kind: str = Field(max_length=10, description="deadline | period | check")
    period_start: date
    period_end: date
    due_date: date
    extended_to: date | None = None
    due_at: datetime = Field(sa_type=UTCDateTime)
    times_required: int = 1
    times_done: int = 0
    status: str = Field(default=OPEN, max_length=10)
    status_reason: str | None = None
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    # the escalation ladder's state (bot.escalation.Progress), for the due day it was planned for
    next_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    planned_due: date | None = None
    reminder_step: int = -1
    escalation_step: int = -1
    escalation_repeats: int = 0
    escalation: list[dict[str, Any]] | None = _json()  # policy snapshot once escalation began
    # why planning this row failed last (a bad value must not stop every other reminder)
    planning_error: str | None = None


class Notification(SQLModel, table=True):
    """The outbox: one planned message for one person (intent), recorded before anything is
    sent.  Pending notifications are gathered into bundles (one message per person and sending
    window); each bundle is delivered to each reachable binding of that person."""

    __table_args__ = (
        Index(
            "ix_notification_pending",
            "not_before",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200, description="idempotency key")
    kind: str = Field(max_length=32, description="reminder | escalation | digest | completed | …")
    level: str | None = Field(default=None, max_length=8, description="blue | yellow | red")
    step: int = 0
    # no foreign keys to these parents (migrations 0009, 0010): PostgreSQL's check of each one
    # for each inserted row was half of writing a catch-up; none of them is ever deleted
    schedule_id: str | None = None
    occurrence_id: int | None = Field(default=None, index=True)
    person_id: int = Field(index=True)
    payload: dict[str, Any] | None = _json(kind=JSONText)  # written once, read whole (0010)
    not_before: datetime = Field(sa_type=UTCDateTime)
    # relevance: undelivered past this instant, the notification is dead (visible, re-drivable)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # pending | waiting (nobody reachable yet) | bundled | sent | cancelled | superseded | dead
    state: str = Field(default="pending", max_length=10)
    # no foreign key (migration 0010): the only bundles ever deleted are ones the same
    # transaction made and found no notification for (bot.outbox.enqueue_bundled)
    bundle_id: int | None = Field(default=None, index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)


class Bundle(SQLModel, table=True):
    """One message to one person: a notification, or several gathered for one sending window
    (a single notification is a bundle of one).  Open while nothing of it was claimed: later
    notifications of the same window join it; sealed at the first claim."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200, description="identity, class and window")
    identity_id: int = Field(foreign_key="identity.id", index=True)
    person_id: int = Field(foreign_key="person.id", description="whose language it speaks")
    kind: str = Field(max_length=32, description="the members' kind (one kind per bundle)")
    level: str | None = Field(default=None, max_length=8)
    not_before: datetime = Field(sa_type=UTCDateTime)
    state: str = Field(default="open", max_length=10, description="open | sealed | done")
    created_at: datetime = Field(sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One bundle sent to one chat binding: the unit of claiming, sending, retrying and pacing.

    A claim is a lease fenced by ``claim_token``: an outcome is written only by the claim that
    is still current, so a worker whose lease lapsed cannot overwrite a newer claim."""

    __table_args__ = (
        UniqueConstraint("bundle_id", "binding_id"),
        Index(
            "ix_delivery_due",
            "not_before",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "ix_delivery_claimed",
            "claimed_until",
            postgresql_where=text("state = 'claimed'"),
            sqlite_where=text("state = 'claimed'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    bundle_id: int = Field(foreign_key="bundle.id", index=True)
    binding_id: int = Field(foreign_key="chatbinding.id", index=True)
    platform: str = Field(max_length=16)
    not_before: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # pending | claimed | sent | failed (refused for good) | dead (expired) | cancelled
    state: str = Field(default="pending", max_length=10)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=120)
    claim_token: str | None = Field(default=None, max_length=32)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_ref: str | None = Field(default=None, max_length=120)
    last_error: str | None = None
    timeouts: int = 0  # sends that timed out after the platform may have accepted them
    created_at: datetime = Field(sa_type=UTCDateTime)


class WorkerLease(SQLModel, table=True):
    """A running worker by its stable name: lets a restarted worker take back what its previous
    incarnation claimed at once (instead of waiting for the lease), and tells /healthz who runs."""

    name: str = Field(primary_key=True, max_length=120)
    incarnation: str = Field(max_length=32)
    host: str = Field(default="", max_length=120)
    pid: int = 0  # on the same host, a dead pid means the previous run crashed: take over now
    started_at: datetime = Field(sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(sa_type=UTCDateTime)


class Reply(SQLModel, table=True):
    """An official's answer to an occurrence: done, progress, extension, not_mine."""

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    kind: str = Field(max_length=12)
    note: str | None = Field(default=None, sa_column=Column(Text))
    percent: int | None = None
    requested_date: date | None = None
    decision: str | None = Field(default=None, max_length=10, description="approved | denied")
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Evidence(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    reply_id: int = Field(foreign_key="reply.id", index=True)
    kind: str = Field(max_length=10, description="photo | document | text")
    file_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    local_path: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Who did what, when, through which message.  Append-only."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=120, description="person:<id>, cli, system")
    action: str = Field(max_length=40, index=True)
    schedule_id: str | None = Field(default=None, index=True)
    task_id: int | None = None
    occurrence_id: int | None = Field(default=None, index=True)
    notification_id: int | None = None
    person_id: int | None = None
    # through which channel the action came (chat, web, cli, system) and, for chat, which
    # platform and message
    channel: str | None = Field(default=None, max_length=16)
    platform: str | None = Field(default=None, max_length=16)
    message_ref: str | None = Field(default=None, max_length=120)
    detail: dict[str, Any] | None = _json()


class ChatBinding(SQLModel, table=True):
    """One chat of one person on one platform (a Telegram chat, a DingTalk or WeCom user).

    Reachability is a state of the binding, not of the person: a user who left the DingTalk
    organisation is unreachable there and still reachable on Telegram."""

    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="identity.id", index=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    user_id: str | None = Field(default=None, max_length=64, description="platform account")
    via: str = Field(
        default="invite",
        max_length=10,
        description="invite | directory | console",
        sa_column_kwargs={"server_default": "invite"},
    )
    bound_at: datetime = Field(sa_type=UTCDateTime)
    active: bool = True  # False once unbound ("这不是我", a newer binding, an admin)
    unreachable_reason: str | None = None
    unreachable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invite(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ChatState(SQLModel, table=True):
    """A half-finished chat flow (done → evidence, extension → date → reason, import → confirm).

    Kept in the store, not in memory, so a restart between two messages loses nothing;
    ``expires_at`` lets an abandoned flow lapse instead of capturing a later, unrelated reply.
    """

    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16, sa_column_kwargs={"server_default": "telegram"})
    chat_id: str = Field(max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)
    flow: str = Field(
        max_length=16,
        description="done | progress | extend | import",
        sa_column_kwargs={"server_default": ""},
    )
    step: str = Field(max_length=16, sa_column_kwargs={"server_default": ""})
    occurrence_id: int | None = None
    data: dict[str, Any] | None = _json()
    updated_at: datetime = Field(
        sa_type=UTCDateTime, sa_column_kwargs={"server_default": text("CURRENT_TIMESTAMP")}
    )
    expires_at: datetime = Field(
        sa_type=UTCDateTime,
        index=True,
        sa_column_kwargs={"server_default": text("CURRENT_TIMESTAMP")},
    )


class WebToken(SQLModel, table=True):
    """A secret URL token of the web console, kept only as a hash: a one-time sign-in link
    (``signin``: single use, minutes long) or a person's calendar feed (``feed``: long lived,
    revoked by issuing a new one)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10, description="signin | feed")
    token_hash: str = Field(unique=True, max_length=64)
    identity_id: int = Field(foreign_key="identity.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Draft(SQLModel, table=True):
    """A schedule being reviewed before it is applied (草稿): the uploaded source, the YAML
    drafted from it (and edited in review), where each task was read and what the reviewer
    should look at.  The web review page and the chat /import flow share this row, so a
    restart or a switch from chat to web loses nothing."""

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: str | None = Field(default=None, max_length=100, index=True)
    source_name: str = Field(max_length=200)
    source_kind: str = Field(max_length=10, description="document | yaml")
    source_bytes: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # the document as read: [[line, text], ...], so the review shows a task beside its lines
    source_lines: list[Any] | None = _json()
    yaml_text: str = Field(sa_column=Column(Text, nullable=False))
    # per task ref: the document lines it was read from
    task_lines: dict[str, Any] | None = _json()
    # what the reviewer should check: [{"kind", "ref", "line", "text"}, ...]
    flags: list[Any] | None = _json()
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_via: str = Field(default="web", max_length=16)
    # draft | applied | discarded
    state: str = Field(default="draft", max_length=10)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
