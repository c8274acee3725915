"""Who will get how many messages at the next sending window: shown before it happens.

Importing a list whose deadlines have passed, or the morning after a long holiday, an admin
should see the first day's volume before anyone's phone rings (`dutybot import`, the web
preview).  The forecast is a rehearsal: the real engine and the real outbox run in a
transaction on one connection that is rolled back, at the next window's instant.  Nothing
is sent and nothing stays.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy import Engine as DbEngine
from sqlmodel import Session, col, select

from bot.bundling import Windows
from bot.engine import Engine
from bot.materialise import schedule_time
from bot.store.models import Bundle, ChatBinding, Notification, Person, Schedule


@dataclass
class Recipient:
    name: str
    messages: int = 0  # messages in the window (bundles), to each of their chats
    items: int = 0  # notifications (task items) those messages carry
    kinds: Counter[str] = field(default_factory=Counter)
    waiting: bool = False  # no chat bound yet: their items wait until they bind


@dataclass
class Forecast:
    at: datetime  # the window's first instant
    recipients: list[Recipient]

    @property
    def messages(self) -> int:
        return sum(r.messages for r in self.recipients)

    @property
    def items(self) -> int:
        return sum(r.items for r in self.recipients)


def next_window(session: Session, schedule_id: str, now: datetime) -> datetime:
    schedule = session.get(Schedule, schedule_id)
    assert schedule is not None
    st = schedule_time(schedule)
    slot = Windows.from_policy(schedule.policy, st.hours).slot(now, st)
    return slot.send_at


def forecast(db: DbEngine, schedule_id: str, now: datetime) -> Forecast:
    """Rehearse the next window of one schedule (its people only) and count what it sends."""
    with db.connect() as conn:
        outer = conn.begin()
        try:
            return forecast_on(conn, schedule_id, now)
        finally:
            outer.rollback()


def forecast_on(conn: Connection, schedule_id: str, now: datetime) -> Forecast:
    """:func:`forecast` inside a transaction the caller rolls back (the web preview imports a
    draft in it first, so a list not yet applied can be forecast)."""
    with Session(conn) as session:
        at = next_window(session, schedule_id, now)
        platforms = sorted(set(session.exec(select(ChatBinding.platform).distinct()).all())) or [
            "none"
        ]
    engine = Engine(conn)  # type: ignore[arg-type]  # a connection binds sessions too
    engine.plan_pass(at, platforms=platforms)
    with Session(conn) as session:
        found = _count(session, schedule_id, at)
    return Forecast(at, found)


def _count(session: Session, schedule_id: str, at: datetime) -> list[Recipient]:
    people = {
        p.id: p for p in session.exec(select(Person).where(Person.schedule_id == schedule_id)).all()
    }
    by_person: dict[int, Recipient] = {}
    rows = session.exec(
        select(Notification, Bundle)
        .join(Bundle, col(Bundle.id) == Notification.bundle_id, isouter=True)
        .where(
            col(Notification.person_id).in_(list(people)),
            col(Notification.state).in_(("bundled", "waiting")),
        )
    ).all()
    bundles: dict[int, set[int]] = defaultdict(set)
    for note, bundle in rows:
        if bundle is not None and bundle.not_before > at + timedelta(hours=12):
            continue  # a later window
        person = people[note.person_id]
        found = by_person.setdefault(note.person_id, Recipient(person.name))
        found.items += 1
        found.kinds[note.kind] += 1
        if bundle is None:
            found.waiting = True
        else:
            assert bundle.id is not None
            bundles[note.person_id].add(bundle.id)
    for person_id, ids in bundles.items():
        by_person[person_id].messages = len(ids)
    return sorted(by_person.values(), key=lambda r: (-r.messages, -r.items, r.name))


SHOWN = 15  # people listed by name; the rest are counted


def describe(found: Forecast, tz: object, lang: str) -> str:
    """The forecast in words (message_templates/<lang>/forecast.j2)."""
    from bot.texts import phrase

    at = found.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
    if not found.recipients:
        return phrase("forecast", "nothing", lang, at=at)
    return phrase(
        "forecast",
        "summary",
        lang,
        at=at,
        messages=found.messages,
        items=found.items,
        people=len(found.recipients),
        shown=found.recipients[:SHOWN],
        more=max(len(found.recipients) - SHOWN, 0),
        waiting=sum(1 for r in found.recipients if r.waiting),
    )
