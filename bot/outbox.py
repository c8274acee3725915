"""The durable outbox: planned messages are rows; a dispatcher claims, sends and records them.

Intent is recorded before sending and the outcome after it (healthchecks' lesson: marking
work done before sending loses the message on a crash).  A claim is a lease: a crashed
worker's rows go back to the queue when the lease ends, so at most the messages in
flight are repeated.  Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers share one queue; SQLite has a single writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import Engine as DbEngine
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.adapters.base import ChatAdapter, Delivery, DeliveryError
from bot.clock import Clock
from bot.materialise import schedule_time
from bot.messages import OutboundMessage, compose, row_payload
from bot.occurrences import ScheduleTime
from bot.store.db import session_scope
from bot.store.models import (
    OPEN,
    AuditEvent,
    ChatBinding,
    Notification,
    Occurrence,
    Person,
    Schedule,
)

log = logging.getLogger("dutybot.outbox")

PENDING, CLAIMED, SENT, FAILED, CANCELLED, UNBOUND = (
    "pending",
    "claimed",
    "sent",
    "failed",
    "cancelled",
    "unbound",
)
CHASING_KINDS = ("reminder", "progress", "escalation")


def notification_row(
    *,
    key: str,
    kind: str,
    person_id: int,
    not_before: datetime,
    now: datetime,
    schedule_id: str | None,
    occurrence_id: int | None = None,
    level: str | None = None,
    step: int = 0,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "level": level,
        "step": step,
        "schedule_id": schedule_id,
        "occurrence_id": occurrence_id,
        "person_id": person_id,
        "payload": payload or {},
        "not_before": not_before,
        "state": PENDING,
        "attempts": 0,
        "created_at": now,
    }


def enqueue(session: Session, rows: list[dict[str, Any]]) -> int:
    """Record intents; a key that exists already is skipped, so planning twice is harmless."""
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Notification)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(col(Notification.id))  # counts what was new; rowcount is -1 on psycopg 3
    )
    return len(session.execute(statement, rows).all())  # one executemany, not one per row


def cancel_pending(session: Session, occurrence_id: int) -> None:
    """A closed occurrence chases nobody: drop what is queued for it."""
    session.execute(
        update(Notification)
        .where(
            col(Notification.occurrence_id) == occurrence_id,
            col(Notification.state) == PENDING,
            col(Notification.kind).in_(CHASING_KINDS),
        )
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )


Address = Callable[[Session, Person, str], str | None]


def bound_chat(session: Session, person: Person, platform: str) -> str | None:
    binding = session.exec(
        select(ChatBinding).where(
            ChatBinding.person_id == person.id,
            ChatBinding.platform == platform,
            col(ChatBinding.active).is_(True),
        )
    ).first()
    return binding.chat_id if binding else None


@dataclass
class _Job:
    notification_id: int
    person_id: int
    attempts: int
    message: OutboundMessage | None = None
    skip: str | None = None  # the state to record without sending
    postpone: datetime | None = None  # back to the queue until then, no attempt counted
    outcome: Delivery | DeliveryError | None = None


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dispatcher:
    def __init__(
        self,
        db: DbEngine,
        adapter: ChatAdapter,
        clock: Clock,
        *,
        worker: str,
        address: Address = bound_chat,
        lang: str = "zh-CN",
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 8,
        backoff: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(hours=1),
        concurrency: int = 30,
    ) -> None:
        self.db, self.adapter, self.clock = db, adapter, clock
        self.worker, self.address, self.lang = worker, address, lang
        self.batch, self.lease, self.max_attempts = batch, lease, max_attempts
        self.backoff, self.max_backoff = backoff, max_backoff
        self.concurrency = concurrency
        limits = adapter.limits
        self._overall = AsyncLimiter(limits.overall_per_second, 1.0) if limits else None
        self._per_chat_period = 1.0 / limits.per_chat_per_second if limits else 0.0
        self._chats: dict[str, AsyncLimiter] = {}

    # -- claim -------------------------------------------------------------------------
    def claim(self, now: datetime) -> list[int]:
        with session_scope(self.db) as session:
            session.execute(
                update(Notification)
                .where(col(Notification.state) == CLAIMED, col(Notification.claimed_until) < now)
                .values(state=PENDING, claimed_by=None)
                .execution_options(synchronize_session=False)
            )
            due = (
                select(Notification.id)
                .where(col(Notification.state) == PENDING, col(Notification.not_before) <= now)
                .order_by(col(Notification.not_before), col(Notification.id))
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            claimed = session.execute(
                update(Notification)
                .where(col(Notification.id).in_(due.scalar_subquery()))
                .values(
                    state=CLAIMED,
                    claimed_by=self.worker,
                    claimed_until=now + self.lease,
                    attempts=col(Notification.attempts) + 1,
                )
                .returning(col(Notification.id))
                .execution_options(synchronize_session=False)
            )
            return sorted(claimed.scalars().all())

    def release(self) -> int:
        """Graceful shutdown: what this worker claimed but did not send goes back to the queue."""
        with session_scope(self.db) as session:
            result = session.execute(
                update(Notification)
                .where(
                    col(Notification.state) == CLAIMED, col(Notification.claimed_by) == self.worker
                )
                .values(state=PENDING, claimed_by=None, attempts=col(Notification.attempts) - 1)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- one round -------------------------------------------------------------------------
    async def run_once(self) -> DispatchStats:
        stats = DispatchStats()
        ids = self.claim(self.clock.now())
        stats.claimed = len(ids)
        if not ids:
            return stats
        jobs = self._prepare(ids)
        self._record([j for j in jobs if j.message is None], stats)
        await self._send_all([j for j in jobs if j.message is not None], stats)
        return stats

    async def drain(self, *, max_rounds: int = 10_000) -> DispatchStats:
        """Send everything due now (tests, the demo, a catch-up after downtime)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = await self.run_once()
            if not stats.claimed:
                break
            for name in ("claimed", "sent", "retried", "failed", "skipped"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            for kind, n in stats.by_kind.items():
                total.by_kind[kind] += n
        return total

    def _prepare(self, ids: list[int]) -> list[_Job]:
        jobs = []
        now = self.clock.now()
        times: dict[str, ScheduleTime] = {}
        with session_scope(self.db) as session:
            rows = session.exec(select(Notification).where(col(Notification.id).in_(ids))).all()
            for row in sorted(rows, key=lambda r: (r.not_before, r.id or 0)):
                assert row.id is not None
                job = _Job(row.id, row.person_id, row.attempts)
                jobs.append(job)
                if row.schedule_id:
                    if row.schedule_id not in times:
                        schedule = session.get(Schedule, row.schedule_id)
                        assert schedule is not None
                        times[row.schedule_id] = schedule_time(schedule)
                    st = times[row.schedule_id]
                    slot = st.hours.next_slot(now, st.tz, st.calendar)
                    if (
                        slot > now
                    ):  # stale after an outage, or queued at night: wait for working hours
                        job.postpone = slot
                        continue
                person = session.get(Person, row.person_id)
                if person is None or not person.active or person.unreachable_reason:
                    job.skip = FAILED
                    continue
                if row.occurrence_id is not None and row.kind in CHASING_KINDS:
                    occ = session.get(Occurrence, row.occurrence_id)
                    if occ is None or occ.status != OPEN:
                        job.skip = CANCELLED
                        continue
                chat = self.address(session, person, self.adapter.platform)
                if chat is None:
                    job.skip = UNBOUND
                    continue
                message = compose(
                    row.kind, [row_payload(row)], person=person.name, lang=person.lang or self.lang
                )
                job.message = OutboundMessage(chat, message)
        return jobs

    async def _send_all(self, jobs: list[_Job], stats: DispatchStats) -> None:
        """Send, recording each outcome as soon as it is known: a crash repeats only what
        was in flight at that moment, never the whole batch."""
        per_chat: dict[str, list[_Job]] = defaultdict(list)
        for job in jobs:
            assert job.message is not None
            per_chat[job.message.chat_id].append(job)
        gate = asyncio.Semaphore(self.concurrency)

        async def chat_worker(chat: str, queue: list[_Job]) -> None:
            async with gate:
                for index, job in enumerate(queue):
                    job.outcome = outcome = await self._send(chat, job)
                    self._record([job], stats)
                    if isinstance(outcome, DeliveryError) and (
                        outcome.retry_after or outcome.recipient_gone
                    ):
                        # throttled: the rest waits with it; gone: the rest would fail the same way
                        rest = queue[index + 1 :]
                        for later in rest:
                            later.outcome = outcome
                        self._record(rest, stats)
                        return

        await asyncio.gather(*(chat_worker(chat, queue) for chat, queue in per_chat.items()))

    async def _send(self, chat: str, job: _Job) -> Delivery | DeliveryError:
        assert job.message is not None
        await self._pace(chat)
        try:
            return await self.adapter.send(job.message)
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # a transport bug must not kill the dispatcher
            log.exception("adapter %s failed unexpectedly", self.adapter.platform)
            return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)

    async def _pace(self, chat: str) -> None:
        if self._overall is None:
            return
        limiter = self._chats.setdefault(chat, AsyncLimiter(1, self._per_chat_period))
        await limiter.acquire()
        await self._overall.acquire()

    # -- outcomes ----------------------------------------------------------------------------
    def _record(self, jobs: list[_Job], stats: DispatchStats) -> None:
        if not jobs:
            return
        now = self.clock.now()
        with session_scope(self.db) as session:
            for job in jobs:
                row = session.get(Notification, job.notification_id)
                assert row is not None
                row.claimed_by = None
                outcome = job.outcome
                if job.postpone:
                    row.state, row.not_before, row.attempts = (
                        PENDING,
                        job.postpone,
                        row.attempts - 1,
                    )
                elif job.skip:
                    row.state, row.last_error = job.skip, job.skip
                    stats.skipped += 1
                elif isinstance(outcome, Delivery):
                    row.state, row.sent_at, row.message_ref = SENT, now, outcome.message_ref
                    stats.sent += 1
                    stats.by_kind[row.kind] += 1
                    self._audit(
                        session,
                        row,
                        "notification_sent",
                        now,
                        {"kind": row.kind, "level": row.level},
                    )
                elif isinstance(outcome, DeliveryError) and outcome.new_chat_id:
                    self._migrate(session, row, outcome.new_chat_id)
                    row.state, row.not_before, row.last_error = PENDING, now, outcome.reason
                    stats.retried += 1
                elif isinstance(outcome, DeliveryError) and outcome.permanent:
                    row.state, row.last_error = FAILED, outcome.reason
                    stats.failed += 1
                    if outcome.recipient_gone:
                        self._unreachable(session, row, outcome.reason, now)
                    else:  # our message was refused: a bug to fix, not a person to give up on
                        self._audit(
                            session, row, "notification_failed", now, {"reason": outcome.reason}
                        )
                else:
                    reason = outcome.reason if isinstance(outcome, DeliveryError) else "not sent"
                    retry_after = (
                        outcome.retry_after if isinstance(outcome, DeliveryError) else None
                    )
                    row.last_error = reason
                    if row.attempts >= self.max_attempts:
                        row.state = FAILED
                        stats.failed += 1
                        self._audit(session, row, "notification_failed", now, {"reason": reason})
                    else:
                        delay = min(self.backoff * 2 ** max(row.attempts - 1, 0), self.max_backoff)
                        if retry_after:
                            delay = max(delay, timedelta(seconds=retry_after))
                        row.state, row.not_before = PENDING, now + delay
                        stats.retried += 1
                session.add(row)

    def _audit(
        self,
        session: Session,
        row: Notification,
        action: str,
        now: datetime,
        detail: dict[str, Any],
    ) -> None:
        session.add(
            AuditEvent(
                at=now,
                actor="system",
                action=action,
                schedule_id=row.schedule_id,
                occurrence_id=row.occurrence_id,
                notification_id=row.id,
                person_id=row.person_id,
                detail=detail,
            )
        )

    def _migrate(self, session: Session, row: Notification, new_chat_id: str) -> None:
        for binding in session.exec(
            select(ChatBinding).where(
                ChatBinding.person_id == row.person_id,
                ChatBinding.platform == self.adapter.platform,
            )
        ):
            binding.chat_id = new_chat_id
            session.add(binding)

    def _unreachable(self, session: Session, row: Notification, reason: str, now: datetime) -> None:
        """Blocked or gone: stop messaging this person and tell the schedule's admins."""
        person = session.get(Person, row.person_id)
        if person is None:
            return
        person.unreachable_reason = reason
        session.add(person)
        for binding in session.exec(select(ChatBinding).where(ChatBinding.person_id == person.id)):
            binding.active = False
            session.add(binding)
        self._audit(session, row, "recipient_unreachable", now, {"reason": reason})
        admins = session.exec(
            select(Person).where(
                Person.schedule_id == person.schedule_id,
                col(Person.admin).is_(True),
                col(Person.active).is_(True),
                Person.id != person.id,
            )
        ).all()
        enqueue(
            session,
            [
                notification_row(
                    key=f"alert:unreachable:{person.id}:{admin.id}:{now.date().isoformat()}",
                    kind="admin_alert",
                    person_id=admin.id,
                    not_before=now,
                    now=now,
                    schedule_id=person.schedule_id,
                    payload={"person": person.name, "reason": reason},
                )
                for admin in admins
                if admin.id is not None
            ],
        )
