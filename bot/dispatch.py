"""The sender: claim due deliveries, send each through its platform's adapter, record outcomes.

Guarantees (the delivery contract every adapter is tested against, tests/test_dispatch_contract):

- **At most one unrecorded send per chat.**  A chat's deliveries go out one after another, in
  planned order, and the next one leaves only when the previous outcome is durably recorded.
  Outcomes of many chats are written together in small batches, off the event loop.  A crash
  repeats at most the send that was in flight to each chat; nothing recorded is repeated.
- **Fenced claims.**  A claim carries a token; an outcome is written only while that claim is
  current (``state = 'claimed' AND claim_token = …``).  A worker alive renews its leases; a
  worker whose lease lapsed cannot overwrite a newer claim.  A restarted worker takes back what
  its previous incarnation held at once (its stable name in :class:`WorkerLease`).
- **An outage spends no attempts.**  Consecutive transient failures open a platform's circuit:
  claiming stops, one probe goes out with growing intervals, success resumes.  Otherwise
  transient failures back off (30 s doubling, capped at an hour) for as long as the message is
  relevant; what expires becomes a dead letter (:func:`bot.outbox.expire`).
- **429 is honoured.**  A chat answered with ``retry_after`` sends nothing before it has
  passed; several chats throttled at once pause the whole platform (bot.pacing).
- **Per-chat order.**  A delivery that must wait pushes the later ones of its chat behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from bot import metrics
from bot.adapters.base import ChatAdapter, DeliveryError
from bot.adapters.base import Delivery as Receipt
from bot.clock import Clock
from bot.identities import mark_unreachable, other_admins
from bot.logs import log_event
from bot.materialise import schedule_time
from bot.messages import OutboundMessage, compose, row_payload
from bot.occurrences import ScheduleTime
from bot.outbox import (
    BUNDLED,
    CANCELLED,
    CLAIMED,
    FAILED,
    GONE,
    PENDING,
    SENT,
    enqueue,
    members,
    notification_row,
    settle,
)
from bot.pacing import Limit, Pacer
from bot.store.db import session_scope
from bot.store.models import (
    AuditEvent,
    Bundle,
    ChatBinding,
    Delivery,
    Notification,
    Person,
    Schedule,
    WorkerLease,
)

log = logging.getLogger("dutybot.dispatch")


@dataclass(frozen=True)
class SendPolicy:
    batch: int = 200  # deliveries per claim
    per_chat_claim: int = 10  # of which at most this many for one chat
    lease: timedelta = timedelta(minutes=2)
    backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    concurrency: int = 64  # sends in flight at once (TelegramAdapter's pool has as many)
    circuit_failures: int = 5  # consecutive transient failures that mean an outage
    probe_first: timedelta = timedelta(seconds=5)
    probe_max: timedelta = timedelta(minutes=5)
    record_batch: int = 100  # outcomes written in one transaction at most
    prepare_slice: int = 50  # deliveries composed at once (whole chats) before they start
    # the first slice of a claim is smaller: its first message leaves after a few are
    # composed, not fifty (after an outage, fifty officials' summaries of 100 items each
    # took a quarter of a second to compose)
    prepare_first: int = 4
    shutdown_grace: float = 10.0  # seconds SIGTERM waits for sends in flight


@dataclass
class Circuit:
    """One platform's outage detector: closed (sending), open (paused until ``retry_at``)."""

    failures: int = 0
    retry_at: datetime | None = None
    interval: timedelta = timedelta(0)

    @property
    def is_open(self) -> bool:
        return self.retry_at is not None


@dataclass
class _Job:
    delivery_id: int
    bundle_id: int
    binding_id: int
    platform: str
    token: str
    attempts: int
    chat_id: str = ""
    order: tuple[datetime, int] = (datetime.min, 0)
    member_ids: list[int] = field(default_factory=list)
    kind: str = ""
    schedule_id: str | None = None
    person_id: int | None = None
    message: OutboundMessage | None = None
    skip: str | None = None  # a state to record without sending (cancelled)
    postpone: datetime | None = None  # back to the queue until then, no attempt counted
    retry_at: datetime | None = None  # a transient failure's next attempt (one attempt spent)
    outcome: Receipt | DeliveryError | None = None
    recorded: asyncio.Future[None] | None = None


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    fenced: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: DispatchStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "skipped", "fenced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.by_kind.items():
            self.by_kind[kind] += n


def pacer_for(adapter: ChatAdapter) -> Pacer | None:
    limits = adapter.limits
    if limits is None:
        return None
    overall = [_per_second(limits.overall_per_second), *(Limit(*w) for w in limits.overall)]
    per_chat = [_per_second(limits.per_chat_per_second), *(Limit(*w) for w in limits.per_chat)]
    return Pacer(tuple(overall), tuple(per_chat))


def _per_second(rate: float) -> Limit:
    return Limit(int(rate), 1.0) if rate >= 1 else Limit(1, 1.0 / rate)


def default_worker_name() -> str:
    return socket.gethostname()


def _outcome_name(job: _Job) -> str:
    outcome = job.outcome
    if isinstance(outcome, Receipt):
        return "sent"
    if job.skip:
        return job.skip
    if isinstance(outcome, DeliveryError):
        if outcome.retry_after:
            return "throttled"
        if outcome.recipient_gone:
            return "gone"
        if outcome.permanent:
            return "refused"
        return "timeout" if outcome.timed_out else "retry"
    return "postponed"


def _ref(job: _Job) -> str:
    assert isinstance(job.outcome, Receipt)
    return job.outcome.message_ref


def _slices(jobs: list[_Job], size: int, first: int | None = None) -> list[list[_Job]]:
    """The claim in slices of about ``size`` deliveries (the first of about ``first``), a
    chat's deliveries all in one (its order and its one unrecorded send are kept by one chat
    worker).  A binding is one chat (ChatBinding is unique on platform and chat)."""
    by_chat: dict[int, list[_Job]] = defaultdict(list)
    for job in jobs:
        by_chat[job.binding_id].append(job)
    out: list[list[_Job]] = [[]]
    for group in by_chat.values():
        limit = size if len(out) > 1 or first is None else first
        if out[-1] and len(out[-1]) + len(group) > limit:
            out.append([])
        out[-1].extend(group)
    return out


def _retryable(exc: OperationalError) -> bool:
    """A deadlock or serialization failure (PostgreSQL), or a busy SQLite: try again."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc)


def _alive(row: WorkerLease, now: datetime, policy: SendPolicy) -> bool:
    """Is the worker that holds this name still running?  On this host its pid tells (an
    earlier instance inside this very process counts as replaced); elsewhere, its heartbeat."""
    if row.host == socket.gethostname() and row.pid:
        if row.pid == os.getpid():
            return False
        try:
            os.kill(row.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: alive
            return True
        return True
    return row.heartbeat_at >= now - 3 * policy.lease


class Dispatcher:
    def __init__(
        self,
        db: DbEngine,
        adapters: Mapping[str, ChatAdapter] | ChatAdapter,
        clock: Clock,
        *,
        worker: str | None = None,
        lang: str = "zh-CN",
        policy: SendPolicy | None = None,
    ) -> None:
        if not isinstance(adapters, Mapping):
            adapters = {adapters.platform: adapters}
        self.db, self.adapters, self.clock = db, dict(adapters), clock
        self.worker = worker or default_worker_name()
        self.lang = lang
        self.policy = policy or SendPolicy()
        self.incarnation = uuid.uuid4().hex[:16]
        self.circuits = {platform: Circuit() for platform in self.adapters}
        self.pacers = {p: pacer_for(a) for p, a in self.adapters.items()}
        self.last_ok: dict[str, datetime] = {}
        self._in_flight: set[int] = set()
        self._recorder: _Recorder | None = None
        self._registered = False
        self._stopping = False

    @property
    def platforms(self) -> list[str]:
        return list(self.adapters)

    def in_flight(self) -> list[int]:
        """Deliveries this worker holds right now (their leases are renewed)."""
        return list(self._in_flight)

    # -- life ------------------------------------------------------------------------------
    def register(self) -> int:
        """Take this worker's stable name; what a previous incarnation of it had claimed goes
        back to the queue now (its one in-flight send may repeat, once), not after the lease.

        The previous incarnation is known dead when it ran on this host under a pid that no
        longer exists, or when its heartbeat is older than three leases; a live worker of
        the same name makes this one take a suffix (``host-2``)."""
        now = self.clock.now()
        host, pid = socket.gethostname(), os.getpid()
        with session_scope(self.db) as session:
            name, n = self.worker, 1
            while True:
                row = session.get(WorkerLease, name)
                if row is None or row.incarnation == self.incarnation:
                    break
                if not _alive(row, now, self.policy):
                    break
                n += 1
                name = f"{self.worker}-{n}"
            self.worker = name
            if row is None:
                row = WorkerLease(
                    name=name, incarnation=self.incarnation, started_at=now, heartbeat_at=now
                )
            row.incarnation, row.host, row.pid = self.incarnation, host, pid
            row.started_at = row.heartbeat_at = now
            session.add(row)
            result = session.execute(
                update(Delivery)
                .where(col(Delivery.state) == CLAIMED, col(Delivery.claimed_by) == name)
                .values(state=PENDING, claimed_by=None, claim_token=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        self._registered = True
        taken = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if taken:
            log.warning("worker %s took back %d deliveries of its previous run", name, taken)
        return taken

    def heartbeat(self, in_flight: list[int]) -> None:
        """Renew the leases of what this worker is sending, and say it is alive."""
        now = self.clock.now()
        with session_scope(self.db) as session:
            session.execute(
                update(Delivery)
                .where(
                    col(Delivery.state) == CLAIMED,
                    col(Delivery.claimed_by) == self.worker,
                    col(Delivery.id).in_(in_flight or [-1]),
                )
                .values(claimed_until=now + self.policy.lease)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(WorkerLease)
                .where(
                    col(WorkerLease.name) == self.worker,
                    col(WorkerLease.incarnation) == self.incarnation,
                )
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )

    def release(self) -> int:
        """Graceful shutdown: what this worker claimed but did not send goes back to the queue."""
        with session_scope(self.db) as session:
            result = session.execute(
                update(Delivery)
                .where(col(Delivery.state) == CLAIMED, col(Delivery.claimed_by) == self.worker)
                .values(
                    state=PENDING,
                    claimed_by=None,
                    claim_token=None,
                    claimed_until=None,
                    attempts=col(Delivery.attempts) - 1,
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- claim ---------------------------------------------------------------------------
    def claim(self, now: datetime, *, limit: int | None = None) -> list[_Job]:
        """Due deliveries for the platforms whose circuit lets them through (one probe for a
        circuit whose pause has passed); at most ``limit`` per platform (default: a batch)."""
        token = uuid.uuid4().hex[:16]
        jobs: list[_Job] = []
        with session_scope(self.db) as session:
            session.execute(
                update(Delivery)
                .where(col(Delivery.state) == CLAIMED, col(Delivery.claimed_until) < now)
                .values(state=PENDING, claimed_by=None, claim_token=None)
                .execution_options(synchronize_session=False)
            )
            for platform, circuit in self.circuits.items():
                if circuit.is_open and circuit.retry_at and circuit.retry_at > now:
                    continue
                most = 1 if circuit.is_open else (limit or self.policy.batch)
                # fair: a few per chat per round, so one chat's backlog (paced at 1/s) does not
                # fill a batch while every other chat waits behind it
                ranked = (
                    select(
                        Delivery.id,
                        Delivery.not_before,
                        func.row_number()
                        .over(
                            partition_by=col(Delivery.binding_id),
                            order_by=(col(Delivery.not_before), col(Delivery.id)),
                        )
                        .label("n"),
                    )
                    .where(
                        col(Delivery.state) == PENDING,
                        col(Delivery.not_before) <= now,
                        col(Delivery.platform) == platform,
                    )
                    .subquery()
                )
                due = (
                    select(ranked.c.id)
                    .where(ranked.c.n <= self.policy.per_chat_claim)
                    .order_by(ranked.c.not_before, ranked.c.id)
                    .limit(most)
                )
                claimed = session.execute(
                    update(Delivery)
                    # a row another worker claimed meanwhile no longer matches: never twice
                    .where(
                        col(Delivery.id).in_(due.scalar_subquery()), col(Delivery.state) == PENDING
                    )
                    .values(
                        state=CLAIMED,
                        claimed_by=self.worker,
                        claim_token=token,
                        claimed_until=now + self.policy.lease,
                        attempts=col(Delivery.attempts) + 1,
                    )
                    .returning(
                        col(Delivery.id),
                        col(Delivery.bundle_id),
                        col(Delivery.binding_id),
                        col(Delivery.attempts),
                    )
                    .execution_options(synchronize_session=False)
                ).all()
                jobs += [
                    _Job(delivery_id, bundle_id, binding_id, platform, token, attempts)
                    for delivery_id, bundle_id, binding_id, attempts in claimed
                ]
            if jobs:
                session.execute(  # sealed: later notifications of this window wait for the next
                    update(Bundle)
                    .where(
                        col(Bundle.id).in_({j.bundle_id for j in jobs}),
                        col(Bundle.state) == "open",
                    )
                    .values(state="sealed")
                    .execution_options(synchronize_session=False)
                )
        self._in_flight.update(j.delivery_id for j in jobs)
        return jobs

    # -- rounds --------------------------------------------------------------------------
    async def run_once(self, *, limit: int | None = None) -> DispatchStats:
        """Claim one batch (of at most ``limit``), send it, record every outcome."""
        if not self._registered:
            await asyncio.to_thread(self.register)
        stats = DispatchStats()
        jobs = await asyncio.to_thread(self.claim, self.clock.now(), limit=limit)
        stats.claimed = len(jobs)
        if not jobs:
            return stats
        try:
            gate = asyncio.Semaphore(self.policy.concurrency)
            async with _Recorder(self, stats) as recorder:
                self._recorder = recorder
                # prepared a slice of chats at a time: the next slice is composed (in a thread)
                # while the chats of the previous one are already sending
                sending: list[asyncio.Task[None]] = []
                try:
                    parts = _slices(jobs, self.policy.prepare_slice, self.policy.prepare_first)
                    for part in parts:
                        if self._stopping:
                            break  # left claimed: released at shutdown
                        await asyncio.to_thread(self._prepare, part)
                        for job in part:
                            if job.message is None:
                                recorder.submit(job)
                        ready = [j for j in part if j.message is not None]
                        sending.append(asyncio.create_task(self._send_all(ready, recorder, gate)))
                finally:
                    results = await asyncio.gather(*sending, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
        finally:
            self._recorder = None
            self._in_flight.difference_update(j.delivery_id for j in jobs)
        return stats

    async def drain(self, *, max_rounds: int = 10_000) -> DispatchStats:
        """Send everything due now (tests, the demo, a catch-up after downtime)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = await self.run_once()
            total.add(stats)
            if not stats.claimed:
                break
        return total

    def next_due(self) -> datetime | None:
        """When the next delivery of our platforms falls due (the sender sleeps until then)."""
        with Session(self.db) as session:
            found = session.exec(
                select(Delivery.not_before)
                .where(
                    col(Delivery.state) == PENDING,
                    col(Delivery.platform).in_(self.platforms),
                )
                .order_by(col(Delivery.not_before))
                .limit(1)
            ).first()
        probes = [c.retry_at for c in self.circuits.values() if c.retry_at is not None]
        candidates = [t for t in [found, *probes] if t is not None]
        return min(candidates) if candidates else None

    # -- prepare -------------------------------------------------------------------------
    def _prepare(self, jobs: list[_Job]) -> None:
        """Load what each delivery carries and compose its message for its chat."""
        now = self.clock.now()
        times: dict[str, ScheduleTime] = {}
        composed: dict[tuple[int, str], Any] = {}
        with session_scope(self.db) as session:
            bindings = {
                b.id: b
                for b in session.exec(
                    select(ChatBinding).where(col(ChatBinding.id).in_({j.binding_id for j in jobs}))
                ).all()
            }
            bundles = {
                b.id: b
                for b in session.exec(
                    select(Bundle).where(col(Bundle.id).in_({j.bundle_id for j in jobs}))
                ).all()
            }
            carried = members(session, list(bundles))
            people = {
                p.id: p
                for p in session.exec(
                    select(Person).where(
                        col(Person.id).in_({b.person_id for b in bundles.values()})
                    )
                ).all()
            }
            for job in jobs:
                binding, bundle = bindings.get(job.binding_id), bundles.get(job.bundle_id)
                assert bundle is not None and bundle.id is not None
                job.kind, job.person_id = bundle.kind, bundle.person_id
                job.order = (bundle.not_before, job.delivery_id)
                if binding is None or not binding.active or binding.unreachable_reason:
                    job.skip = CANCELLED  # this chat is gone; the bundle settles on the rest
                    continue
                job.chat_id = binding.chat_id
                rows = carried.get(bundle.id, [])
                if not rows:
                    job.skip = CANCELLED  # every item was closed meanwhile
                    continue
                job.member_ids = [r.id for r in rows if r.id is not None]
                job.schedule_id = rows[0].schedule_id
                if job.schedule_id:
                    if job.schedule_id not in times:
                        schedule = session.get(Schedule, job.schedule_id)
                        assert schedule is not None
                        times[job.schedule_id] = schedule_time(schedule)
                    st = times[job.schedule_id]
                    slot = st.hours.next_slot(now, st.tz, st.calendar)
                    if slot > now:  # stale after an outage, or queued at night
                        job.postpone = slot
                        continue
                person = people.get(bundle.person_id)
                assert person is not None
                lang = person.lang or self.lang
                key = (bundle.id, lang)
                if key not in composed:
                    payloads = [row_payload(r) for r in rows]
                    composed[key] = compose(bundle.kind, payloads, person=person.name, lang=lang)
                job.message = OutboundMessage(binding.chat_id, composed[key])

    # -- send ----------------------------------------------------------------------------
    async def _send_all(
        self, jobs: list[_Job], recorder: _Recorder, gate: asyncio.Semaphore
    ) -> None:
        per_chat: dict[tuple[str, str], list[_Job]] = defaultdict(list)
        for job in sorted(jobs, key=lambda j: j.order):
            per_chat[(job.platform, job.chat_id)].append(job)
        failed: list[BaseException] = []

        async def chat_worker(queue: list[_Job]) -> None:
            for index, job in enumerate(queue):
                if self._stopping:
                    return  # left claimed: released at shutdown
                # the gate counts sends in flight, not chats waiting for their record: a slow
                # write must not idle the HTTP pool
                async with gate:
                    hold = self._hold(job)
                    if hold is None:
                        job.outcome = await self._send(job)
                        self._classify(job, self.clock.now())
                        hold = self._wait_after(job)
                    else:
                        job.postpone = hold
                recorder.submit(job)
                assert job.recorded is not None
                try:
                    await job.recorded  # the next send to this chat waits for this record
                except Exception as exc:  # the store is down: stop this chat, leases return it
                    failed.append(exc)
                    return
                if hold is not None:  # the rest of this chat queues up behind it
                    for later in queue[index + 1 :]:
                        later.postpone = hold
                        recorder.submit(later)
                    return

        await asyncio.gather(*(chat_worker(q) for q in per_chat.values()))
        if failed:
            raise failed[0]

    def _hold(self, job: _Job) -> datetime | None:
        """Why not to send now: the platform is down (circuit open) or the chat is throttled."""
        now = self.clock.now()
        circuit = self.circuits[job.platform]
        if circuit.is_open and circuit.retry_at is not None and circuit.retry_at > now:
            return circuit.retry_at
        pacer = self.pacers.get(job.platform)
        paused = pacer.paused_for(job.chat_id) if pacer is not None else 0.0
        return now + timedelta(seconds=paused) if paused > 0 else None

    def _wait_after(self, job: _Job) -> datetime | None:
        """When the rest of this chat's batch may go, after this outcome (None: go on now)."""
        outcome = job.outcome
        if isinstance(outcome, DeliveryError) and outcome.new_chat_id:
            return self.clock.now()  # the chat moved: the next round sends to its new id
        if isinstance(outcome, DeliveryError) and not outcome.permanent:
            return job.postpone or job.retry_at or self.clock.now()
        if isinstance(outcome, DeliveryError) and outcome.recipient_gone:
            return self.clock.now()  # gone: the rest is cancelled at preparation next round
        return None

    async def _send(self, job: _Job) -> Receipt | DeliveryError:
        assert job.message is not None
        adapter = self.adapters[job.platform]
        pacer = self.pacers.get(job.platform)
        if pacer is not None:
            await pacer.acquire(job.chat_id)
        started = time.perf_counter()
        try:
            return await adapter.send(job.message)
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # a transport bug must not kill the sender
            log.exception("adapter %s failed unexpectedly", job.platform)
            return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)
        finally:
            if pacer is not None:
                pacer.release(job.chat_id)  # counted from its answer on: see bot.pacing
            metrics.SEND_LATENCY.labels(job.platform).observe(time.perf_counter() - started)

    # -- outcomes ------------------------------------------------------------------------
    def _classify(self, job: _Job, now: datetime) -> None:
        """After a send: feed the circuit and the pacer, and decide when a transient failure is
        tried again (``postpone``: no attempt spent; ``retry_at``: backoff)."""
        outcome = job.outcome
        if isinstance(outcome, Receipt):
            self._circuit_ok(job.platform, now)
            return
        if not isinstance(outcome, DeliveryError) or outcome.permanent or outcome.new_chat_id:
            return
        if outcome.retry_after:
            metrics.THROTTLED.labels(job.platform).inc()
            metrics.SENDS.labels(job.platform, "throttled").inc()
            pacer = self.pacers.get(job.platform)
            if pacer is not None and pacer.throttled(job.chat_id, outcome.retry_after):
                log.warning(
                    "%s: several chats throttled at once: every chat waits %.1fs",
                    job.platform,
                    outcome.retry_after,
                )
            job.postpone = now + timedelta(seconds=outcome.retry_after)
            return
        if outcome.timed_out:
            metrics.TIMEOUT_RESENDS.labels(job.platform).inc()
        circuit = self.circuits[job.platform]
        circuit.failures += 1
        if circuit.is_open or circuit.failures >= self.policy.circuit_failures:
            self._circuit_trip(job.platform, now, outcome.reason)
            job.postpone = circuit.retry_at  # an outage: no attempt counted
            return
        delay = min(self.policy.backoff * 2 ** max(job.attempts - 1, 0), self.policy.max_backoff)
        job.retry_at = now + delay

    def _circuit_trip(self, platform: str, now: datetime, reason: str) -> None:
        circuit = self.circuits[platform]
        first = not circuit.is_open
        circuit.interval = (
            self.policy.probe_first if first else min(circuit.interval * 2, self.policy.probe_max)
        )
        circuit.retry_at = now + circuit.interval
        metrics.CIRCUIT_OPEN.labels(platform).set(1)
        if first:
            log.error(
                "%s looks down (%s): sending paused, probing every %ss up to %ss",
                platform,
                reason,
                int(self.policy.probe_first.total_seconds()),
                int(self.policy.probe_max.total_seconds()),
            )

    def _circuit_ok(self, platform: str, now: datetime) -> None:
        circuit = self.circuits[platform]
        if circuit.is_open:
            log.warning("%s answers again: sending resumed", platform)
        circuit.failures, circuit.retry_at, circuit.interval = 0, None, timedelta(0)
        metrics.CIRCUIT_OPEN.labels(platform).set(0)
        self.last_ok[platform] = now

    def record(self, jobs: list[_Job], stats: DispatchStats) -> None:
        """Write outcomes in one transaction, each fenced on its claim.  Rows are touched in
        bundle order; two workers recording deliveries of the same bundles may still deadlock
        on PostgreSQL, and the loser's transaction (rolled back whole) is simply run again."""
        now = self.clock.now()
        ordered = sorted(jobs, key=lambda j: (j.bundle_id, j.delivery_id))
        for attempt in range(3):
            trial = DispatchStats()
            try:
                with session_scope(self.db) as session:
                    sent = [j for j in ordered if isinstance(j.outcome, Receipt)]
                    self._record_sent(session, sent, now, trial)
                    for job in ordered:
                        if not isinstance(job.outcome, Receipt):
                            self._record_one(session, job, now, trial)
                    self._touch_bindings(session, sent, now)
            except OperationalError as exc:
                if attempt == 2 or not _retryable(exc):
                    raise
                log.info("recording outcomes met a lock conflict; again")
                continue
            stats.add(trial)
            for job in ordered:
                when = job.postpone or job.retry_at
                log_event(
                    log,
                    "send_outcome",
                    delivery=job.delivery_id,
                    platform=job.platform,
                    kind=job.kind,
                    items=len(job.member_ids),
                    outcome=_outcome_name(job),
                    attempt=job.attempts,
                    retry_at=when.isoformat() if when else None,
                )
            return

    def _record_sent(
        self, session: Session, jobs: list[_Job], now: datetime, stats: DispatchStats
    ) -> None:
        """The common outcome, in a handful of statements for the whole batch: deliveries
        (fenced), their notifications, the audit trail, the bundles that are now done."""
        if not jobs:
            return
        table = Delivery.__table__  # Core executemany: the ORM's bulk mode wants plain keys
        result = session.connection().execute(
            update(table)
            .where(
                table.c.id == bindparam("d_id"),
                table.c.claim_token == bindparam("d_token"),
                table.c.state == CLAIMED,
            )
            .values(
                state=SENT,
                sent_at=now,
                message_ref=bindparam("d_ref"),
                claimed_by=None,
                claim_token=None,
                claimed_until=None,
            ),
            [{"d_id": j.delivery_id, "d_token": j.token, "d_ref": _ref(j)} for j in jobs],
        )
        ok = jobs
        if int(result.rowcount or 0) != len(jobs):  # type: ignore[attr-defined]
            ours = {
                d_id
                for d_id, ref, state in session.execute(
                    select(Delivery.id, Delivery.message_ref, Delivery.state).where(
                        col(Delivery.id).in_([j.delivery_id for j in jobs])
                    )
                ).all()
                if state == SENT and ref == next(_ref(j) for j in jobs if j.delivery_id == d_id)
            }
            ok = [j for j in jobs if j.delivery_id in ours]
            for job in jobs:
                if job.delivery_id not in ours:
                    stats.fenced += 1
                    metrics.SENDS.labels(job.platform, "fenced").inc()
                    log.warning("delivery %d sent but its claim was taken over", job.delivery_id)
        if not ok:
            return
        for job in ok:
            stats.sent += 1
            stats.by_kind[job.kind] += 1
            metrics.SENDS.labels(job.platform, "sent").inc()
        members = [m for j in ok for m in j.member_ids]
        if members:
            session.execute(
                update(Notification)
                .where(col(Notification.id).in_(members), col(Notification.state) == BUNDLED)
                .values(state=SENT, sent_at=now)
                .execution_options(synchronize_session=False)
            )
        session.execute(
            insert(AuditEvent),
            [
                {
                    "at": now,
                    "actor": "system",
                    "action": "notification_sent",
                    "schedule_id": j.schedule_id,
                    "person_id": j.person_id,
                    "channel": "system",
                    "platform": j.platform,
                    "detail": {
                        "delivery": j.delivery_id,
                        "kind": j.kind,
                        "items": len(j.member_ids),
                    },
                }
                for j in ok
            ],
        )
        bundles = list({j.bundle_id for j in ok})
        still = select(Delivery.bundle_id).where(
            col(Delivery.bundle_id).in_(bundles), col(Delivery.state).in_((PENDING, CLAIMED))
        )
        session.execute(
            update(Bundle)
            .where(col(Bundle.id).in_(bundles), col(Bundle.id).not_in(still))
            .values(state="done")
            .execution_options(synchronize_session=False)
        )

    def _touch_bindings(self, session: Session, jobs: list[_Job], now: datetime) -> None:
        """When each chat last took a message (health): skipped for rows another worker holds
        -- a timestamp is not worth a lock wait."""
        ids = sorted({j.binding_id for j in jobs if isinstance(j.outcome, Receipt)})
        if not ids:
            return
        free = session.exec(
            select(ChatBinding.id)
            .where(col(ChatBinding.id).in_(ids))
            .order_by(col(ChatBinding.id))
            .with_for_update(skip_locked=True)
        ).all()
        if free:
            session.execute(
                update(ChatBinding)
                .where(col(ChatBinding.id).in_(list(free)))
                .values(last_ok_at=now)
                .execution_options(synchronize_session=False)
            )

    def _fenced(self, session: Session, job: _Job, **values: Any) -> bool:
        result = session.execute(
            update(Delivery)
            .where(
                col(Delivery.id) == job.delivery_id,
                col(Delivery.claim_token) == job.token,
                col(Delivery.state) == CLAIMED,
            )
            .values(claimed_by=None, claim_token=None, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _record_one(self, session: Session, job: _Job, now: datetime, stats: DispatchStats) -> None:
        outcome = job.outcome
        if job.postpone is not None and not isinstance(outcome, Receipt):
            # no attempt counted: out of hours, behind an earlier message, throttled, an outage
            if self._fenced(
                session,
                job,
                state=PENDING,
                not_before=job.postpone,
                attempts=col(Delivery.attempts) - 1,
            ):
                self._push_back(session, job, job.postpone)
            else:
                stats.fenced += 1
            return
        if job.skip:
            if self._fenced(session, job, state=job.skip, last_error=job.skip):
                stats.skipped += 1
                settle(session, job.bundle_id, now)
            else:
                stats.fenced += 1
            return
        assert isinstance(outcome, DeliveryError)
        reason = outcome.reason[:500]
        if outcome.new_chat_id:
            binding = session.get(ChatBinding, job.binding_id)
            if binding is not None:
                binding.chat_id = outcome.new_chat_id
                session.add(binding)
            if self._fenced(
                session,
                job,
                state=PENDING,
                not_before=now,
                last_error=reason,
                attempts=col(Delivery.attempts) - 1,
            ):
                stats.retried += 1
            return
        if outcome.permanent:
            state = GONE if outcome.recipient_gone else FAILED
            if not self._fenced(session, job, state=state, last_error=reason):
                stats.fenced += 1
                return
            stats.failed += 1
            if outcome.recipient_gone:
                metrics.SENDS.labels(job.platform, "gone").inc()
                self._unreachable(session, job, reason, now)
            else:  # our message was refused: a bug to fix, not a person to give up on
                metrics.SENDS.labels(job.platform, "failed").inc()
                self._audit(session, job, "notification_failed", now, {"reason": reason})
            settle(session, job.bundle_id, now)
            return
        retry_at = job.retry_at or now
        stats.retried += 1
        metrics.SENDS.labels(job.platform, "retry").inc()
        if self._fenced(
            session,
            job,
            state=PENDING,
            not_before=retry_at,
            last_error=reason,
            timeouts=col(Delivery.timeouts) + (1 if outcome.timed_out else 0),
        ):
            self._push_back(session, job, retry_at)
        else:
            stats.fenced += 1

    def _push_back(self, session: Session, job: _Job, until: datetime) -> None:
        """Later deliveries to the same chat wait behind this one: per-chat order holds."""
        session.execute(
            update(Delivery)
            .where(
                col(Delivery.binding_id) == job.binding_id,
                col(Delivery.state) == PENDING,
                col(Delivery.id) > job.delivery_id,
                col(Delivery.not_before) < until,
            )
            .values(not_before=until)
            .execution_options(synchronize_session=False)
        )

    def _audit(
        self, session: Session, job: _Job, action: str, now: datetime, detail: dict[str, Any]
    ) -> None:
        session.add(
            AuditEvent(
                at=now,
                actor="system",
                action=action,
                schedule_id=job.schedule_id,
                person_id=job.person_id,
                channel="system",
                platform=job.platform,
                detail={"delivery": job.delivery_id, **detail},
            )
        )

    def _unreachable(self, session: Session, job: _Job, reason: str, now: datetime) -> None:
        """Blocked or gone on this platform: this binding only is given up; admins are told."""
        binding = session.get(ChatBinding, job.binding_id)
        if binding is None:
            return
        mark_unreachable(session, binding, reason=reason, now=now)
        self._audit(
            session, job, "recipient_unreachable", now, {"reason": reason, "binding": binding.id}
        )
        people = session.exec(select(Person).where(Person.identity_id == binding.identity_id)).all()
        rows = []
        for person in people:
            admins = other_admins(session, person, binding.identity_id)
            rows += [
                notification_row(
                    key=f"alert:unreachable:{binding.id}:{admin.id}:{now.date().isoformat()}",
                    kind="admin_alert",
                    person_id=admin.id,
                    not_before=now,
                    now=now,
                    schedule_id=person.schedule_id,
                    payload={"person": person.name, "reason": reason, "platform": binding.platform},
                )
                for admin in admins
                if admin.id is not None
            ]
        enqueue(session, rows)


class _Recorder:
    """Writes outcomes in small batches off the event loop; each job's ``recorded`` future
    resolves when its outcome is durable (or the write failed: it stays claimed and its lease
    returns it to the queue)."""

    def __init__(self, dispatcher: Dispatcher, stats: DispatchStats) -> None:
        self.dispatcher, self.stats = dispatcher, stats
        self._queue: list[_Job] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> _Recorder:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    def submit(self, job: _Job) -> None:
        job.recorded = asyncio.get_running_loop().create_future()
        self._queue.append(job)
        self._wake.set()

    async def _run(self) -> None:
        policy = self.dispatcher.policy
        while True:
            await self._wake.wait()
            self._wake.clear()
            # no artificial wait: what arrives while one batch is written forms the next batch
            while self._queue:
                batch = self._queue[: policy.record_batch]
                del self._queue[: policy.record_batch]
                error: BaseException | None = None
                try:
                    await asyncio.to_thread(self.dispatcher.record, batch, self.stats)
                except Exception as exc:  # the store is down: leases bring the rows back
                    log.error("recording %d outcomes failed: %s", len(batch), exc)
                    error = exc
                for job in batch:
                    if job.recorded is not None and not job.recorded.done():
                        if error is None:
                            job.recorded.set_result(None)
                        else:
                            job.recorded.set_exception(error)
            if self._closing and not self._queue:
                return
