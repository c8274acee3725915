"""Filling the outbox for sender tests and benchmarks: people bound to chats, and messages
that each travel alone (one per person and minute, so nothing is bundled together).

Pytest-free on purpose, so bench/ scripts use the same thing the tests do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from bot.identities import bind
from bot.outbox import enqueue, gather_all, notification_row
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import Person

SCHEDULES = Path(__file__).resolve().parent.parent.parent / "schedules"
REAL = "fengdu-ndrc-2022"


def seed_bound(
    engine: Engine, *, platform: str, chat: int = 1000, imported: datetime, schedule: str = REAL
) -> dict[str, int]:
    """A real schedule with every person bound on ``platform`` to chat ``chat + person id``;
    returns name → person id."""
    spec = load_schedule(SCHEDULES / f"{schedule}.yaml").spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=imported, horizon_days=62)
        people = session.exec(select(Person).where(Person.schedule_id == spec.schedule)).all()
        for person in people:
            assert person.id is not None
            bind(
                session,
                person=person,
                platform=platform,
                chat_id=str(chat + person.id),
                now=imported,
            )
        return {p.name: p.id for p in people if p.id is not None}


def queue_alone(
    engine: Engine,
    person_ids: list[int],
    count: int,
    *,
    start: datetime,
    platforms: list[str],
    schedule_id: str = REAL,
    prefix: str = "msg",
) -> list[str]:
    """``count`` admin alerts round robin over ``person_ids``, each gathered in a minute of its
    own (so each is its own message); returns their markers, in order."""
    markers, rows = [], []
    per_person: dict[int, int] = {}
    for n in range(count):
        pid = person_ids[n % len(person_ids)]
        minute = per_person.get(pid, 0)
        per_person[pid] = minute + 1
        at = start + timedelta(minutes=minute)
        marker = f"{prefix}-{n:05d}"
        markers.append(marker)
        rows.append(
            notification_row(
                key=marker,
                kind="admin_alert",
                person_id=pid,
                not_before=at,
                now=at,
                schedule_id=schedule_id,
                payload={"person": "测试", "reason": marker},
            )
        )
    with session_scope(engine) as session:
        enqueue(session, rows)
    minutes = max(per_person.values())
    for m in range(minutes):
        gather_all(
            lambda: session_scope(engine),
            start + timedelta(minutes=m),
            platforms=platforms,
            ahead=timedelta(0),
        )
    return markers


def record_sent(engine: Engine, row: dict[str, object], *, platform: str, message_ref: str) -> None:
    """A notification as the sender leaves it: in a bundle delivered to the person's chat on
    ``platform`` under the platform's message id (what a quoted reply refers to)."""
    from bot.store.models import Bundle, ChatBinding, Delivery, Notification

    with session_scope(engine) as session:
        person = session.get(Person, row["person_id"])
        assert person is not None and person.identity_id is not None
        binding = session.exec(
            select(ChatBinding).where(
                ChatBinding.identity_id == person.identity_id, ChatBinding.platform == platform
            )
        ).one()
        at = row["not_before"]
        assert isinstance(at, datetime)
        bundle = Bundle(
            key=f"sent:{row['key']}",
            identity_id=person.identity_id,
            person_id=person.id or 0,
            kind=str(row["kind"]),
            not_before=at,
            state="done",
            created_at=at,
        )
        session.add(bundle)
        session.flush()
        session.add(Notification(**{**row, "state": "sent", "bundle_id": bundle.id, "sent_at": at}))
        session.add(
            Delivery(
                bundle_id=bundle.id or 0,
                binding_id=binding.id or 0,
                platform=platform,
                not_before=at,
                state="sent",
                attempts=1,
                sent_at=at,
                message_ref=message_ref,
                created_at=at,
            )
        )


def named_worker(engine: Engine, adapter: object, clock: object, **options: object) -> object:
    """A worker whose adapter reaches every person at a chat named after them (the console's
    and the recording adapter's way), bound now."""
    from bot.identities import bind_everyone
    from bot.worker import Worker

    with session_scope(engine) as session:
        bind_everyone(session, platform=adapter.platform, now=clock.now())  # type: ignore[attr-defined]
    return Worker(engine, adapter, clock, **options)  # type: ignore[arg-type]
