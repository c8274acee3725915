"""The durable outbox: planned messages are rows, gathered into bundles, one delivery per chat.

Intent is recorded before sending and the outcome after it (healthchecks' lesson: marking work
done before sending loses the message on a crash).  The life of a message:

1. the engine and the domain actions record a :class:`Notification` (one per person, with an
   idempotency key, so planning twice is harmless) -- :func:`enqueue`;
2. :func:`gather` puts pending notifications into a :class:`Bundle` per person, class and
   sending window (:mod:`bot.bundling`), and creates one :class:`Delivery` per reachable chat
   binding of that person; a person nobody can reach yet keeps them ``waiting`` until a chat
   is bound (:func:`bot.identities.release_waiting`).  The engine's rows that are due take
   both steps at once (:func:`enqueue_bundled`): written already in their bundle;
3. the sender (:mod:`bot.dispatch`) claims due deliveries, sends and records each outcome.

What stays undelivered past its relevance becomes ``dead``: visible (``dutybot outbox``,
/healthz, the console) and re-drivable (:func:`redrive`), never silently dropped.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.bundling import (
    CHASING_KINDS,
    DIGEST,
    Placement,
    Windows,
    bundle_class,
    place,
    relevance,
)
from bot.identities import ensure_identities
from bot.materialise import schedule_time
from bot.occurrences import ScheduleTime
from bot.store.db import bulk_insert, bulk_raise, bulk_update
from bot.store.models import (
    OPEN,
    AuditEvent,
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
EXCEPT_KINDS = ("binding_notice",)  # kinds whose payload names a binding not to deliver to
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
    """Record intents; a key that exists already is skipped, so planning twice is harmless.
    Returns how many were new (one statement for the lot)."""
    return bulk_insert(session, Notification, rows, on_conflict=["key"])


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

    def add(self, other: GatherStats) -> None:
        for name in ("bundled", "bundles", "deliveries", "waiting", "dead"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Item(NamedTuple):
    """What bundling reads of a notification (the columns gathering selects): a stored row, or
    one being planned (no id yet: only a digest's placement depends on its id)."""

    id: int | None
    kind: str
    level: str | None
    person_id: int
    schedule_id: str | None
    not_before: datetime
    expires_at: datetime | None


# what gathering reads of a stored notification
_GATHERED = tuple(getattr(Notification, name) for name in Item._fields)


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


@dataclass
class _Placing:
    """One notification finding its bundle: where it would go at this attempt."""

    row: Any  # an Item, or a stored row of the same columns
    identity_id: int
    person_id: int
    rules: tuple[ScheduleTime, Windows] | None
    attempt: int = 0
    key: str = ""
    send_at: datetime | None = None
    day: date | None = None
    # placements already worked out in this pass: a catch-up places thousands of items of
    # one kind and level due at the same instant (only a digest's depends on its row)
    placed: dict[tuple[Any, ...], Placement] | None = None

    def place(self, now: datetime) -> None:
        row = self.row
        due = max(row.not_before, now)
        klass = bundle_class(row.kind, row.level)
        if self.rules is None:  # no schedule: a notice of its own minute
            bucket, self.send_at, self.day = f"m{due.replace(second=0, microsecond=0)}", due, None
        else:
            st, windows = self.rules
            memo = (id(windows), row.kind, row.level, due, self.attempt)
            placed = None if self.placed is None or row.kind == DIGEST else self.placed.get(memo)
            if placed is None:
                assert row.id is not None or row.kind != DIGEST, "a digest is placed by its id"
                placed = place(
                    kind=row.kind,
                    level=row.level,
                    not_before=due,
                    notification_id=row.id or 0,
                    windows=windows,
                    st=st,
                    attempt=self.attempt,
                )
                if self.placed is not None and row.kind != DIGEST:
                    self.placed[memo] = placed
            bucket, self.send_at, self.day = placed.bucket, placed.send_at, placed.day
        self.key = f"{self.identity_id}:{klass}:{bucket}"


Outcome = tuple[str, int | None, str | None]  # a notification's state, bundle, error


@dataclass
class _Bundled:
    """What bundling decided for a list of items, before its deliveries are written."""

    outcome: list[Outcome | None]  # per item; None: it lost a race, the next pass places it
    deliveries: dict[tuple[int, int], dict[str, Any]]
    carried: Counter[int]  # items each bundle takes in this pass
    created: set[int]  # bundles made in this pass


def _bundle(
    session: Session,
    items: list[Any],
    now: datetime,
    *,
    platforms: Collection[str],
    excluded: dict[int, int],
    stats: GatherStats,
) -> _Bundled:
    """Decide each item's fate: into a bundle of its person's (an open one that exists, or a
    new one, written here), waiting for a chat, cancelled or dead; and the deliveries those
    bundles need, one per reachable binding on ``platforms`` (``excluded``: item index → a
    binding its message must not go to).  A few statements whatever the number of items."""
    now = now.astimezone(UTC)  # as stored instants are: compared without asking zone offsets
    outcome: list[Outcome | None] = [None] * len(items)
    people = {
        p.id: p
        for p in session.exec(
            select(Person).where(col(Person.id).in_({r.person_id for r in items}))
        ).all()
    }
    ensure_identities(session, [p for p in people.values() if p.identity_id is None], now)
    reachable: dict[int, list[ChatBinding]] = defaultdict(list)
    for binding in session.exec(
        select(ChatBinding).where(
            col(ChatBinding.identity_id).in_({p.identity_id for p in people.values()}),
            col(ChatBinding.active).is_(True),
            col(ChatBinding.unreachable_reason).is_(None),
            col(ChatBinding.platform).in_(list(platforms)),
        )
    ):
        reachable[binding.identity_id].append(binding)
    times = _Times(session)
    placements: dict[tuple[Any, ...], Placement] = {}
    placing: list[tuple[int, _Placing]] = []
    # items alike in all that places them share one placing: a tick's thousands of items are
    # a few hundred (person, kind, level, send-at); only a digest is placed by its own id
    alike: dict[tuple[Any, ...], _Placing] = {}
    identity_of = {pid: p.identity_id for pid, p in people.items() if p.active}
    for index, row in enumerate(items):
        identity_id = identity_of.get(row.person_id, 0)
        if row.expires_at is not None and row.expires_at <= now:
            outcome[index] = (DEAD, None, "expired before it could be sent")
            stats.dead += 1
        elif identity_id == 0:
            outcome[index] = (CANCELLED, None, "person no longer on the list")
        elif not reachable.get(identity_id or 0):
            outcome[index] = (WAITING, None, None)  # kept for when the person binds a chat
            stats.waiting += 1
        else:
            assert identity_id is not None
            group = (
                (identity_id, row.person_id, row.schedule_id, row.kind, row.level, row.not_before)
                if row.kind != DIGEST
                else (index,)
            )
            item = alike.get(group)
            if item is None:
                item = alike[group] = _Placing(
                    row, identity_id, row.person_id, times.of(row.schedule_id), placed=placements
                )
                item.place(now)
            placing.append((index, item))
    chosen, created = _choose_bundles(session, list(alike.values()), now)
    stats.bundles += len(created)
    # plain values read once: thousands of items share a few bundles and bindings
    bundle_of = {key: (b.id, b.not_before) for key, b in chosen.items()}
    chats = {
        identity: [(b.id, b.platform) for b in bindings] for identity, bindings in reachable.items()
    }
    deliveries: dict[tuple[int, int], dict[str, Any]] = {}
    carried: Counter[int] = Counter()
    for index, item in placing:
        found = bundle_of.get(item.key)
        if found is None:  # lost a race for a new window's bundle: next pass places it
            continue
        bundle_id, bundle_not_before = found
        expires_at = items[index].expires_at
        assert bundle_id is not None
        outcome[index] = (BUNDLED, bundle_id, None)
        carried[bundle_id] += 1
        stats.bundled += 1
        for binding_id, platform in chats[item.identity_id]:
            assert binding_id is not None
            if excluded.get(index) == binding_id:
                continue
            known = deliveries.get((bundle_id, binding_id))
            if known is not None:
                known["expires_at"] = _lasting(known["expires_at"], expires_at)
                continue
            deliveries[(bundle_id, binding_id)] = {
                "bundle_id": bundle_id,
                "binding_id": binding_id,
                "platform": platform,
                "not_before": bundle_not_before,
                "expires_at": expires_at,
                "state": PENDING,
                "attempts": 0,
                "timeouts": 0,
                "created_at": now,
            }
    return _Bundled(outcome, deliveries, carried, created)


def _deliver(session: Session, bundled: _Bundled, stats: GatherStats) -> None:
    """Write the deliveries bundling decided on, and keep joined bundles' deliveries alive as
    long as their newest item."""
    if not bundled.deliveries:
        return
    # the sender claims by (send-at, id): of messages due at one instant, the one with
    # fewer items is composed sooner, so it goes first (after an outage a leader's
    # message of thousands of items must not hold up everyone else's first message)
    ordered = sorted(bundled.deliveries.values(), key=lambda d: bundled.carried[d["bundle_id"]])
    stats.deliveries += bulk_insert(
        session, Delivery, ordered, on_conflict=["bundle_id", "binding_id"]
    )
    joined = [d for d in bundled.deliveries.values() if d["bundle_id"] not in bundled.created]
    _extend_expiry(session, joined)


def gather(
    session: Session,
    now: datetime,
    *,
    platforms: Collection[str],
    ahead: timedelta = timedelta(0),
    limit: int = GATHER_BATCH,
) -> GatherStats:
    """Put pending notifications due by ``now + ahead`` into bundles, with one delivery per
    reachable binding on ``platforms``.  Runs in the caller's transaction, a few statements per
    batch whatever its size; call it until it returns fewer than ``limit`` rows
    (:func:`gather_all`)."""
    stats = GatherStats()
    # plain rows of the few columns placing needs (not the payload: that is read when
    # composing); ORM objects cost more to build than everything else gathering does
    rows = session.execute(
        select(*_GATHERED)
        .where(Notification.state == PENDING, col(Notification.not_before) <= now + ahead)
        .order_by(col(Notification.not_before), col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return stats
    # a notice about a new binding goes to the person's other chats, not to the new one
    notices = {r.id: index for index, r in enumerate(rows) if r.kind in EXCEPT_KINDS}
    excluded: dict[int, int] = {}
    if notices:
        for nid, payload in session.exec(
            select(Notification.id, Notification.payload).where(
                col(Notification.id).in_(list(notices))
            )
        ).all():
            if payload and payload.get("except_binding"):
                excluded[notices[nid]] = int(payload["except_binding"])
    bundled = _bundle(session, rows, now, platforms=platforms, excluded=excluded, stats=stats)
    _deliver(session, bundled, stats)
    bulk_update(
        session,
        Notification,
        [
            {"id": row.id, "state": out[0], "bundle_id": out[1], "last_error": out[2]}
            for row, out in zip(rows, bundled.outcome, strict=True)
            if out is not None
        ],
    )
    return stats


def enqueue_bundled(
    session: Session,
    rows: list[dict[str, Any]],
    now: datetime,
    *,
    platforms: Collection[str],
    ahead: timedelta = timedelta(0),
    stats: GatherStats,
) -> int:
    """:func:`enqueue` and :func:`gather` in one step, for the engine's rows: those due by
    ``now + ahead`` are written already in their bundle (or waiting, or cancelled), with their
    deliveries; the rest are written pending, for a later gathering.  One write per
    notification instead of an insert and an update: at 1,000 due occurrences the update was
    a third of a tick.  Returns how many notifications were new.

    A key that exists already is skipped, as :func:`enqueue` does (a duty missed period after
    period collapses to one key a day); a bundle made in this step for nothing but such keys
    is dropped again.  Digests are placed by their id, so they go through :func:`gather`."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:  # the first of a key wins, as the insert's ON CONFLICT would decide
        unique.setdefault(row["key"], row)
    rows = list(unique.values())
    now = now.astimezone(UTC)
    horizon = now + ahead
    ready = [r for r in rows if r["kind"] != DIGEST and r["not_before"] <= horizon]
    bundled: _Bundled | None = None
    if ready:
        excluded = {
            index: int(row["payload"]["except_binding"])
            for index, row in enumerate(ready)
            if row["kind"] in EXCEPT_KINDS and (row["payload"] or {}).get("except_binding")
        }
        fields = Item._fields[1:]  # all but the id, which a row gets when it is inserted
        items = [Item(None, *(r[name] for name in fields)) for r in ready]
        bundled = _bundle(session, items, now, platforms=platforms, excluded=excluded, stats=stats)
        for row, out in zip(ready, bundled.outcome, strict=True):
            if out is not None:
                row["state"], row["bundle_id"], row["last_error"] = out
    for row in rows:  # every row names the same columns (one statement for the lot)
        row.setdefault("bundle_id", None)
        row.setdefault("last_error", None)
    written = bulk_insert(session, Notification, rows, on_conflict=["key"])
    if bundled is None:
        return written
    if written < len(rows) and bundled.created:
        kept = set(
            session.exec(
                select(Notification.bundle_id)
                .where(col(Notification.bundle_id).in_(bundled.created))
                .distinct()
            ).all()
        )
        empty = bundled.created - kept
        if empty:
            session.execute(
                delete(Bundle)
                .where(col(Bundle.id).in_(empty))
                .execution_options(synchronize_session=False)
            )
            bundled.deliveries = {k: d for k, d in bundled.deliveries.items() if k[0] not in empty}
            bundled.created -= empty
            stats.bundles -= len(empty)
    _deliver(session, bundled, stats)
    return written


class _Chosen(NamedTuple):
    """What bundling reads of a bundle (plain values: building ORM bundles, a hundred per
    pass, was a third of choosing them)."""

    id: int
    key: str
    not_before: datetime
    state: str


_CHOSEN = tuple(getattr(Bundle, name) for name in _Chosen._fields)


def _choose_bundles(
    session: Session, placing: list[_Placing], now: datetime
) -> tuple[dict[str, _Chosen], set[int]]:
    """The bundle each key names: an open one that exists, or a new one -- moving a
    notification to its next window when its window's message has gone or the person's day
    is full.  One query per round of moves (almost always one round)."""
    chosen: dict[str, _Chosen] = {}
    fresh: dict[str, dict[str, Any]] = {}
    used = _used_per_day(session, placing)
    todo = placing
    for _ in range(MAX_PLACEMENT_ATTEMPTS):
        if not todo:
            break
        wanted = {i.key for i in todo} - set(chosen) - set(fresh)
        if wanted:
            for bundle in session.execute(
                # locked in key order: two workers joining the same bundles never deadlock
                select(*_CHOSEN)
                .where(col(Bundle.key).in_(wanted))
                .order_by(col(Bundle.key))
                .with_for_update()
            ).all():
                chosen[bundle.key] = _Chosen(*bundle)
        again = []
        for item in todo:
            found = chosen.get(item.key)
            if (found is not None and found.state == OPEN_BUNDLE) or item.key in fresh:
                continue
            cap = item.rules[1].daily_cap if item.rules else None
            full = False
            if found is None and item.day is not None and cap is not None:
                count = used[(item.identity_id, item.day)]
                full = count >= cap
                if not full:
                    used[(item.identity_id, item.day)] = count + 1
            if found is None and not full:
                assert item.send_at is not None
                fresh[item.key] = {
                    "key": item.key,
                    "identity_id": item.identity_id,
                    "person_id": item.person_id,
                    "kind": item.row.kind,
                    "level": item.row.level,
                    "not_before": item.send_at,
                    "state": OPEN_BUNDLE,
                    "created_at": now,
                }
                continue
            item.attempt += 1  # sealed, done or over the cap: the next window
            item.place(now)
            again.append(item)
        todo = again
    else:
        raise RuntimeError(f"no bundle could take {len(todo)} notifications")
    created: set[int] = set()
    if fresh:
        statement = (
            _insert(session)(Bundle)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(col(Bundle.id), col(Bundle.key))
        )
        ordered = [fresh[key] for key in sorted(fresh)]  # in key order too
        ids = dict((key, bid) for bid, key in session.execute(statement, ordered))
        for key, values in fresh.items():
            if key in ids:
                chosen[key] = _Chosen(ids[key], key, values["not_before"], OPEN_BUNDLE)
                created.add(ids[key])
            else:  # another worker made it a moment ago: join it if it is still open
                other = session.execute(select(*_CHOSEN).where(Bundle.key == key)).first()
                if other is not None and other.state == OPEN_BUNDLE:
                    chosen[key] = _Chosen(*other)
                else:
                    chosen.pop(key, None)
    return {k: b for k, b in chosen.items() if b.state == OPEN_BUNDLE}, created


def _used_per_day(session: Session, placing: list[_Placing]) -> defaultdict[tuple[int, date], int]:
    """Chasing messages each person already has on each local day in play (the daily cap),
    from one query."""
    used: defaultdict[tuple[int, date], int] = defaultdict(int)
    chasing = [i for i in placing if i.day is not None and i.rules is not None]
    if not chasing:
        return used
    tz = chasing[0].rules[0].tz  # type: ignore[index]
    first = min(i.day for i in chasing if i.day) - timedelta(days=1)
    last = max(i.day for i in chasing if i.day) + timedelta(days=MAX_PLACEMENT_ATTEMPTS)
    for identity_id, at in session.exec(
        select(Bundle.identity_id, Bundle.not_before).where(
            col(Bundle.identity_id).in_({i.identity_id for i in chasing}),
            col(Bundle.kind).in_(CHASING_KINDS),
            col(Bundle.not_before) >= datetime.combine(first, datetime.min.time(), tz),
            col(Bundle.not_before) < datetime.combine(last, datetime.min.time(), tz),
        )
    ).all():
        used[(identity_id, at.astimezone(tz).date())] += 1
    return used


def _lasting(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later expiry; None (never expires) outlasts any instant."""
    return None if a is None or b is None else max(a, b)


def _extend_expiry(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """A bundle joined by a longer-lived item keeps its deliveries alive as long (one
    statement for the lot: a catch-up's later batches join a hundred bundles each)."""
    bulk_raise(
        session,
        Delivery,
        [
            {
                "bundle_id": r["bundle_id"],
                "binding_id": r["binding_id"],
                "expires_at": r["expires_at"],
            }
            for r in rows
        ],
        key=("bundle_id", "binding_id"),
        column="expires_at",
        where={"state": PENDING},
    )


def gather_all(
    session_factory: Any, now: datetime, *, platforms: Collection[str], ahead: timedelta
) -> GatherStats:
    """Gather in batches, each its own transaction, until nothing due is left."""
    total = GatherStats()
    while True:
        with session_factory() as session:
            stats = gather(session, now, platforms=platforms, ahead=ahead)
        total.add(stats)
        if stats.bundled + stats.waiting + stats.dead < GATHER_BATCH:
            return total


# ---- what a bundle carries -------------------------------------------------------------------


# what composing reads of a bundle's notifications
_CARRIED = (
    Notification.id,
    Notification.kind,
    Notification.level,
    Notification.schedule_id,
    Notification.occurrence_id,
    Notification.bundle_id,
    Notification.payload,
)


def members(session: Session, bundle_ids: Collection[int]) -> dict[int, list[Any]]:
    """What each bundle's message is made of now: closed items left out (two queries for any
    number of bundles).  Plain rows of the columns composing reads: a catch-up's bundle to a
    leader holds 10k items, and building them as ORM objects cost more than composing."""
    rows = session.execute(
        select(*_CARRIED)
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
    found: dict[int, list[Any]] = defaultdict(list)
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


def redrive_dead_letters(
    session: Session, *, now: datetime, schedule_id: str | None, actor: str, channel: str
) -> int:
    """An admin sends a list's dead letters (or every list's) again: the one domain action
    behind ``dutybot dead-letters --redrive``, audited with the channel it came through."""
    query = select(Delivery.id).where(col(Delivery.state).in_((DEAD, FAILED)))
    if schedule_id is not None:  # ids only: dead_letters() also counts each one's items
        query = (
            query.join(Bundle, col(Bundle.id) == Delivery.bundle_id)
            .join(Person, col(Person.id) == Bundle.person_id)
            .where(Person.schedule_id == schedule_id)
        )
    ids = [i for i in session.exec(query).all() if i is not None]
    count = redrive(session, now=now, delivery_ids=ids) if ids else 0
    if count:
        session.add(
            AuditEvent(
                at=now,
                actor=actor,
                action="dead_letters_redriven",
                schedule_id=schedule_id,
                channel=channel,
                detail={"deliveries": ids[:200], "count": count},
            )
        )
    return count
