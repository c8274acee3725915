"""The durable outbox: planned messages are rows, gathered into bundles, one delivery per chat.

Intent is recorded before sending and the outcome after it (healthchecks' lesson: marking work
done before sending loses the message on a crash).  The life of a message:

1. the engine and the domain actions record a :class:`Notification` (one per person, with an
   idempotency key, so planning twice is harmless) -- :func:`enqueue`;
2. :func:`gather` puts pending notifications into a :class:`Bundle` per person, class and
   sending window (:mod:`bot.bundling`), and creates one :class:`Delivery` per reachable chat
   binding of that person; a person nobody can reach yet keeps them ``waiting`` until a chat
   is bound (:func:`bot.identities.release_waiting`);
3. the sender (:mod:`bot.dispatch`) claims due deliveries, sends and records each outcome.

What stays undelivered past its relevance becomes ``dead``: visible (``dutybot outbox``,
/healthz, the console) and re-drivable (:func:`redrive`), never silently dropped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.bundling import CHASING_KINDS, Windows, bundle_class, place, relevance
from bot.identities import ensure_identities
from bot.materialise import schedule_time
from bot.occurrences import ScheduleTime
from bot.store.models import (
    OPEN,
    Bundle,
    ChatBinding,
    Delivery,
    Notification,
    Occurrence,
    Person,
    Schedule,
)

log = logging.getLogger("dutybot.outbox")

# notification states
PENDING, WAITING, BUNDLED, SENT = "pending", "waiting", "bundled", "sent"
CANCELLED, SUPERSEDED, DEAD, FAILED = "cancelled", "superseded", "dead", "failed"
UNDELIVERED = (PENDING, WAITING, BUNDLED)
# bundle states
OPEN_BUNDLE, SEALED, DONE = "open", "sealed", "done"
# delivery states (besides pending, sent, failed, dead, cancelled)
CLAIMED = "claimed"
GONE = "gone"  # the chat is unreachable: its notifications wait for another or a new binding
FINISHED = (SENT, FAILED, DEAD, CANCELLED, GONE)

GATHER_BATCH = 2000
MAX_PLACEMENT_ATTEMPTS = 30


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
    expires_at: datetime | None = None,
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
        "expires_at": expires_at or max(not_before, now) + relevance(kind),
        "state": PENDING,
        "created_at": now,
    }


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def enqueue(session: Session, rows: list[dict[str, Any]]) -> int:
    """Record intents; a key that exists already is skipped, so planning twice is harmless."""
    if not rows:
        return 0
    statement = (
        _insert(session)(Notification)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(col(Notification.id))  # counts what was new; rowcount is -1 on psycopg 3
    )
    return len(session.execute(statement, rows).all())  # one executemany, not one per row


def cancel_pending(session: Session, occurrence_id: int) -> None:
    """A closed occurrence chases nobody: drop what is queued for it (a bundle already formed
    leaves the item out when it is composed)."""
    session.execute(
        update(Notification)
        .where(
            col(Notification.occurrence_id) == occurrence_id,
            col(Notification.state).in_(UNDELIVERED),
            col(Notification.kind).in_(CHASING_KINDS),
        )
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )


# ---- gathering -------------------------------------------------------------------------------


@dataclass
class GatherStats:
    bundled: int = 0
    bundles: int = 0
    deliveries: int = 0
    waiting: int = 0
    dead: int = 0
    by_identity: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Times:
    """Per-pass caches of each schedule's time rules and sending windows."""

    session: Session
    st: dict[str, ScheduleTime] = field(default_factory=dict)
    windows: dict[str, Windows] = field(default_factory=dict)

    def of(self, schedule_id: str | None) -> tuple[ScheduleTime, Windows] | None:
        if schedule_id is None:
            return None
        if schedule_id not in self.st:
            schedule = self.session.get(Schedule, schedule_id)
            if schedule is None:
                return None
            st = schedule_time(schedule)
            self.st[schedule_id] = st
            self.windows[schedule_id] = Windows.from_policy(schedule.policy, st.hours)
        return self.st[schedule_id], self.windows[schedule_id]


def gather(
    session: Session,
    now: datetime,
    *,
    platforms: Collection[str],
    ahead: timedelta = timedelta(0),
    limit: int = GATHER_BATCH,
) -> GatherStats:
    """Put pending notifications due by ``now + ahead`` into bundles, with one delivery per
    reachable binding on ``platforms``.  Runs in the caller's transaction; call it until it
    returns fewer than ``limit`` rows (:func:`gather_all`)."""
    stats = GatherStats()
    rows = session.exec(
        select(Notification)
        .where(Notification.state == PENDING, col(Notification.not_before) <= now + ahead)
        .order_by(col(Notification.not_before), col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return stats
    people = {
        p.id: p
        for p in session.exec(
            select(Person).where(col(Person.id).in_({r.person_id for r in rows}))
        ).all()
    }
    ensure_identities(session, [p for p in people.values() if p.identity_id is None], now)
    identities = {p.identity_id for p in people.values()}
    reachable: dict[int, list[ChatBinding]] = defaultdict(list)
    for binding in session.exec(
        select(ChatBinding).where(
            col(ChatBinding.identity_id).in_(identities),
            col(ChatBinding.active).is_(True),
            col(ChatBinding.unreachable_reason).is_(None),
            col(ChatBinding.platform).in_(list(platforms)),
        )
    ):
        reachable[binding.identity_id].append(binding)
    times = _Times(session)
    bundles: dict[str, Bundle] = {}
    per_day: dict[tuple[int, date], int] = {}
    deliveries: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        assert row.id is not None
        person = people.get(row.person_id)
        if row.expires_at is not None and row.expires_at <= now:
            row.state, row.last_error = DEAD, "expired before it could be sent"
            stats.dead += 1
            session.add(row)
            continue
        if person is None or not person.active:
            row.state, row.last_error = CANCELLED, "person no longer on the list"
            session.add(row)
            continue
        identity_id = person.identity_id
        assert identity_id is not None
        if not reachable.get(identity_id):
            row.state = WAITING  # kept for when the person binds a chat
            stats.waiting += 1
            session.add(row)
            continue
        rules = times.of(row.schedule_id)
        bundle = _bundle_for(session, row, person, identity_id, rules, bundles, per_day, now)
        assert bundle.id is not None
        row.state, row.bundle_id = BUNDLED, bundle.id
        session.add(row)
        stats.bundled += 1
        stats.by_identity[identity_id] += 1
        for binding in reachable[identity_id]:
            assert binding.id is not None
            known = deliveries.get((bundle.id, binding.id))
            deliveries[(bundle.id, binding.id)] = {
                "bundle_id": bundle.id,
                "binding_id": binding.id,
                "platform": binding.platform,
                "not_before": bundle.not_before,
                "expires_at": _lasting(known["expires_at"], row.expires_at)
                if known
                else row.expires_at,
                "state": PENDING,
                "attempts": 0,
                "timeouts": 0,
                "created_at": now,
            }
    stats.bundles = len({b.id for b in bundles.values()})
    if deliveries:
        statement = (
            _insert(session)(Delivery)
            .on_conflict_do_nothing(index_elements=["bundle_id", "binding_id"])
            .returning(col(Delivery.id))
        )
        stats.deliveries = len(session.execute(statement, list(deliveries.values())).all())
        _extend_expiry(session, deliveries.values())
    session.flush()
    return stats


def _lasting(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later expiry; None (never expires) outlasts any instant."""
    return None if a is None or b is None else max(a, b)


def _extend_expiry(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """A bundle joined by a longer-lived item keeps its deliveries alive as long."""
    for row in rows:
        until = row["expires_at"]
        query = update(Delivery).where(
            col(Delivery.bundle_id) == row["bundle_id"],
            col(Delivery.binding_id) == row["binding_id"],
            col(Delivery.state) == PENDING,
        )
        if until is not None:
            query = query.where(col(Delivery.expires_at) < until)
        session.execute(query.values(expires_at=until).execution_options(synchronize_session=False))


def _bundle_for(
    session: Session,
    row: Notification,
    person: Person,
    identity_id: int,
    rules: tuple[ScheduleTime, Windows] | None,
    cache: dict[str, Bundle],
    per_day: dict[tuple[int, date], int],
    now: datetime,
) -> Bundle:
    """The open bundle this notification joins, or a new one (in the next window when this
    window's message was sent already or the day's cap is reached)."""
    assert row.id is not None
    klass = bundle_class(row.kind, row.level)
    due = max(row.not_before, now)
    for attempt in range(MAX_PLACEMENT_ATTEMPTS):
        if rules is None:
            bucket, send_at, day = f"m{due.replace(second=0, microsecond=0).isoformat()}", due, None
            cap = None
        else:
            st, windows = rules
            placed = place(
                kind=row.kind,
                level=row.level,
                not_before=due,
                notification_id=row.id,
                windows=windows,
                st=st,
                attempt=attempt,
            )
            bucket, send_at, day, cap = placed.bucket, placed.send_at, placed.day, windows.daily_cap
        key = f"{identity_id}:{klass}:{bucket}"
        bundle = (
            cache.get(key)
            or session.exec(select(Bundle).where(Bundle.key == key).with_for_update()).first()
        )
        if bundle is not None:
            cache[key] = bundle
            if bundle.state == OPEN_BUNDLE:
                return bundle
            continue  # this window's message is on its way: the next window
        if day is not None and cap is not None:
            used = per_day.get((identity_id, day))
            if used is None:
                used = _bundles_on(session, identity_id, day, rules)
            if used >= cap:
                per_day[(identity_id, day)] = used
                continue
            per_day[(identity_id, day)] = used + 1
        bundle = Bundle(
            key=key,
            identity_id=identity_id,
            person_id=person.id or 0,
            kind=row.kind,
            level=row.level,
            not_before=send_at,
            state=OPEN_BUNDLE,
            created_at=now,
        )
        session.add(bundle)
        session.flush()
        cache[key] = bundle
        return bundle
    raise RuntimeError(
        f"no bundle could take notification {row.id} in {MAX_PLACEMENT_ATTEMPTS} tries"
    )


def _bundles_on(
    session: Session, identity_id: int, day: date, rules: tuple[ScheduleTime, Windows] | None
) -> int:
    """Chasing messages this person already has on that local day (the daily cap)."""
    assert rules is not None
    st = rules[0]
    start = datetime.combine(day, datetime.min.time(), st.tz)
    return int(
        session.exec(
            select(func.count())
            .select_from(Bundle)
            .where(
                Bundle.identity_id == identity_id,
                col(Bundle.kind).in_(CHASING_KINDS),
                col(Bundle.not_before) >= start,
                col(Bundle.not_before) < start + timedelta(days=1),
            )
        ).one()
    )


def gather_all(
    session_factory: Any, now: datetime, *, platforms: Collection[str], ahead: timedelta
) -> GatherStats:
    """Gather in batches, each its own transaction, until nothing due is left."""
    total = GatherStats()
    while True:
        with session_factory() as session:
            stats = gather(session, now, platforms=platforms, ahead=ahead)
        for name in ("bundled", "bundles", "deliveries", "waiting", "dead"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        if stats.bundled + stats.waiting + stats.dead < GATHER_BATCH:
            return total


# ---- what a bundle carries -------------------------------------------------------------------


def members(session: Session, bundle_ids: Collection[int]) -> dict[int, list[Notification]]:
    """What each bundle's message is made of now: closed items left out (two queries for any
    number of bundles)."""
    rows = session.exec(
        select(Notification)
        .where(
            col(Notification.bundle_id).in_(list(bundle_ids)),
            col(Notification.state).in_((BUNDLED, SENT)),
        )
        .order_by(col(Notification.id))
    ).all()
    chasing = {r.occurrence_id for r in rows if r.kind in CHASING_KINDS and r.occurrence_id}
    open_ids = (
        set(
            session.exec(
                select(Occurrence.id).where(
                    col(Occurrence.id).in_(chasing), Occurrence.status == OPEN
                )
            ).all()
        )
        if chasing
        else set()
    )
    found: dict[int, list[Notification]] = defaultdict(list)
    for row in rows:
        if row.kind in CHASING_KINDS and row.occurrence_id and row.occurrence_id not in open_ids:
            continue
        assert row.bundle_id is not None
        found[row.bundle_id].append(row)
    return found


# ---- dead letters ------------------------------------------------------------------------------


def expire(session: Session, now: datetime) -> int:
    """Deliveries still unsent past their relevance become dead letters (visible, re-drivable)."""
    result = session.execute(
        update(Delivery)
        .where(
            col(Delivery.state) == PENDING,
            col(Delivery.expires_at).is_not(None),
            col(Delivery.expires_at) <= now,
        )
        .values(state=DEAD, last_error=func.coalesce(Delivery.last_error, "expired"))
        .returning(col(Delivery.bundle_id))
        .execution_options(synchronize_session=False)
    )
    bundles = {bundle_id for (bundle_id,) in result.all()}
    for bundle_id in bundles:
        settle(session, bundle_id, now)
    return len(bundles)


def settle(session: Session, bundle_id: int, now: datetime) -> None:
    """Once no delivery of a bundle is still on its way, its notifications take the outcome:
    sent if any chat got it; else dead (expired), failed (refused), or waiting (nobody
    reachable now: delivered when the person binds a chat again)."""
    states = [
        d.state for d in session.exec(select(Delivery).where(Delivery.bundle_id == bundle_id))
    ]
    if any(s in (PENDING, CLAIMED) for s in states):
        return
    bundle = session.get(Bundle, bundle_id)
    if bundle is not None and bundle.state != DONE:
        bundle.state = DONE
        session.add(bundle)
    if SENT in states:
        return  # the members were marked sent with the first delivery that got through
    outcome = DEAD if DEAD in states else FAILED if FAILED in states else WAITING
    if not states:
        outcome = WAITING
    session.execute(
        update(Notification)
        .where(col(Notification.bundle_id) == bundle_id, col(Notification.state) == BUNDLED)
        .values(state=outcome, bundle_id=None if outcome == WAITING else bundle_id)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: int
    platform: str
    person: str
    schedule_id: str | None
    kind: str
    items: int
    error: str | None
    since: datetime


def dead_letters(
    session: Session, *, schedule_ids: Iterable[str] | None = None, limit: int = 200
) -> list[DeadLetter]:
    """What could not be delivered, newest first (for admins: CLI, console, health)."""
    query = (
        select(Delivery, Bundle, Person)
        .join(Bundle, col(Bundle.id) == Delivery.bundle_id)
        .join(Person, col(Person.id) == Bundle.person_id)
        .where(col(Delivery.state).in_((DEAD, FAILED)))
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    if schedule_ids is not None:
        query = query.where(col(Person.schedule_id).in_(list(schedule_ids)))
    found = []
    for delivery, bundle, person in session.exec(query).all():
        assert delivery.id is not None
        count = session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.bundle_id == bundle.id)
        ).one()
        found.append(
            DeadLetter(
                delivery.id,
                delivery.platform,
                person.name,
                person.schedule_id,
                bundle.kind,
                int(count),
                delivery.last_error,
                delivery.created_at,
            )
        )
    return found


def redrive(session: Session, *, now: datetime, delivery_ids: Iterable[int] | None = None) -> int:
    """Send dead letters again, with a fresh relevance (an admin's decision, audited by caller)."""
    query = select(Delivery).where(col(Delivery.state).in_((DEAD, FAILED)))
    if delivery_ids is not None:
        query = query.where(col(Delivery.id).in_(list(delivery_ids)))
    rows = session.exec(query).all()
    for delivery in rows:
        delivery.state, delivery.not_before = PENDING, now
        delivery.expires_at, delivery.attempts = now + timedelta(days=1), 0
        session.add(delivery)
        session.execute(
            update(Notification)
            .where(
                col(Notification.bundle_id) == delivery.bundle_id,
                col(Notification.state).in_((DEAD, FAILED)),
            )
            .values(state=BUNDLED, expires_at=now + timedelta(days=1))
            .execution_options(synchronize_session=False)
        )
    return len(rows)
