"""The dispatcher over real HTTP to the fake Bot API: retries, backoff, blocked recipients, release."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.telegram import TelegramAdapter
from bot.clock import SimulatedClock
from bot.outbox import Dispatcher, enqueue, notification_row
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Notification, Person
from tests.conftest import SCHEDULES, local
from tests.fakes.botapi import FakeBotApi, Fault

NOW = local(2022, 6, 1, 9, 0)  # a Wednesday, inside working hours
TOKEN = "123456:TEST-token"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as server:
        yield server


def seeded(engine: Engine) -> dict[str, int]:
    """The real schedule, every person bound to chat 1000+id; returns name → person id."""
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=local(2022, 5, 23, 8, 0), horizon_days=62)
        people = {p.name: p.id for p in session.exec(select(Person)).all()}
        for pid in people.values():
            assert pid is not None
            session.add(
                ChatBinding(
                    person_id=pid, platform="telegram", chat_id=str(1000 + pid), bound_at=NOW
                )
            )
    return {k: v for k, v in people.items() if v is not None}


def queue(engine: Engine, person_id: int, key: str, now: datetime = NOW) -> None:
    with session_scope(engine) as session:
        enqueue(
            session,
            [
                notification_row(
                    key=key,
                    kind="admin_alert",
                    person_id=person_id,
                    not_before=now,
                    now=now,
                    schedule_id="fengdu-ndrc-2022",
                    payload={"person": "测试", "reason": key},
                )
            ],
        )


def dispatcher(
    engine: Engine, api: FakeBotApi, clock: SimulatedClock, **kwargs: object
) -> Dispatcher:
    adapter = TelegramAdapter(TOKEN, base_url=api.base_url, read_timeout=0.5, connect_timeout=0.5)
    adapter.limits = None  # pacing is measured in bench/; here we test outcomes
    return Dispatcher(engine, adapter, clock, worker="w1", **kwargs)  # type: ignore[arg-type]


def row(engine: Engine, key: str) -> Notification:
    with Session(engine) as session:
        return session.exec(select(Notification).where(Notification.key == key)).one()


def test_sent_once_and_recorded(engine: Engine, api: FakeBotApi) -> None:
    people = seeded(engine)
    queue(engine, people["熊伟"], "k1")
    clock = SimulatedClock(NOW)

    async def scenario() -> None:
        d = dispatcher(engine, api, clock)
        stats = await d.drain()
        assert (stats.sent, stats.failed) == (1, 0), row(engine, "k1").last_error
        assert (await d.drain()).claimed == 0  # nothing sent twice

    asyncio.run(scenario())
    [call] = api.calls_to("sendMessage")
    assert call.chat_id == str(1000 + people["熊伟"]) and "无法送达" in call.params["text"]
    sent = row(engine, "k1")
    assert sent.state == "sent" and sent.sent_at == NOW and sent.message_ref


def test_429_waits_for_retry_after_then_sends(engine: Engine, api: FakeBotApi) -> None:
    people = seeded(engine)
    queue(engine, people["熊伟"], "k429")
    api.inject("sendMessage", Fault.retry_after(120))
    clock = SimulatedClock(NOW)

    async def scenario() -> None:  # one event loop, as in production
        d = dispatcher(engine, api, clock)
        stats = await d.drain()
        assert (stats.sent, stats.retried) == (0, 1)
        waiting = row(engine, "k429")
        assert waiting.state == "pending" and waiting.not_before >= NOW + timedelta(seconds=120)
        clock.advance(timedelta(seconds=60))
        assert (await d.drain()).claimed == 0  # not before retry_after
        clock.advance(timedelta(seconds=61))
        assert (await d.drain()).sent == 1

    asyncio.run(scenario())
    assert row(engine, "k429").state == "sent" and len(api.calls_to("sendMessage")) == 2


def test_5xx_and_timeouts_back_off_exponentially_and_give_up(
    engine: Engine, api: FakeBotApi
) -> None:
    people = seeded(engine)
    queue(engine, people["熊伟"], "k5xx")
    api.inject("sendMessage", Fault.server_error(502), Fault.slow(1.5), Fault.server_error(500))
    clock = SimulatedClock(NOW)
    delays: list[float] = []

    async def scenario() -> None:
        d = dispatcher(engine, api, clock, max_attempts=3, backoff=timedelta(seconds=30))
        for _ in range(3):
            await d.drain()
            waiting = row(engine, "k5xx")
            if waiting.state != "pending":
                break
            delays.append((waiting.not_before - clock.now()).total_seconds())
            clock.set(waiting.not_before)

    asyncio.run(scenario())
    assert delays == [30.0, 60.0]  # 502, then a read timeout: both transient, doubling
    final = row(engine, "k5xx")
    assert final.state == "failed" and final.attempts == 3
    assert "Internal Server Error" in (final.last_error or "")
    with Session(engine) as session:
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "notification_failed")
        ).all()


def test_blocked_recipient_is_marked_and_admins_told(engine: Engine, api: FakeBotApi) -> None:
    people = seeded(engine)
    blocked = people["熊伟"]
    queue(engine, blocked, "kblock")
    queue(engine, blocked, "kblock2")
    api.inject("sendMessage", Fault.blocked(), chat_id=str(1000 + blocked))
    clock = SimulatedClock(NOW)
    d = dispatcher(engine, api, clock)
    asyncio.run(d.drain())
    with Session(engine) as session:
        person = session.get(Person, blocked)
        assert person is not None and "blocked" in (person.unreachable_reason or "")
        binding = session.exec(select(ChatBinding).where(ChatBinding.person_id == blocked)).one()
        assert binding.active is False
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "recipient_unreachable")
        ).all()
    assert row(engine, "kblock").state == "failed"
    assert row(engine, "kblock2").state == "failed"  # not retried for a person who blocked us
    # the schedule's admin (办公室联络员) heard about it over the same channel
    admin_chat = str(1000 + people["办公室联络员"])
    alerts = api.calls_to("sendMessage", chat_id=admin_chat)
    assert len(alerts) == 1 and "熊伟" in alerts[0].params["text"]


def test_a_refused_message_is_not_blamed_on_the_person(engine: Engine, api: FakeBotApi) -> None:
    people = seeded(engine)
    queue(engine, people["熊伟"], "kbad")
    api.inject("sendMessage", Fault.bad_request("Bad Request: can't parse entities"))
    asyncio.run(dispatcher(engine, api, SimulatedClock(NOW)).drain())
    with Session(engine) as session:
        person = session.get(Person, people["熊伟"])
        assert person is not None and person.unreachable_reason is None
    assert row(engine, "kbad").state == "failed"


def test_out_of_hours_rows_wait_for_the_next_working_morning(
    engine: Engine, api: FakeBotApi
) -> None:
    people = seeded(engine)
    friday_night = local(2022, 6, 10, 21, 0)
    queue(engine, people["熊伟"], "knight", now=friday_night)
    clock = SimulatedClock(friday_night)
    d = dispatcher(engine, api, clock)
    asyncio.run(d.drain())
    waiting = row(engine, "knight")
    assert waiting.state == "pending" and waiting.not_before == local(2022, 6, 13, 8, 30)
    assert waiting.attempts == 0 and api.calls_to("sendMessage") == []


def test_release_hands_claimed_rows_back(engine: Engine, api: FakeBotApi) -> None:
    people = seeded(engine)
    for n in range(3):
        queue(engine, people["熊伟"], f"kr{n}")
    clock = SimulatedClock(NOW)
    d = dispatcher(engine, api, clock, lease=timedelta(minutes=10))
    assert len(d.claim(NOW)) == 3
    other = dispatcher(engine, api, clock)
    assert other.claim(NOW) == []  # leased to w1
    assert d.release() == 3
    assert len(other.claim(NOW)) == 3
    # an expired lease is reclaimed by anyone
    assert d.claim(NOW + timedelta(minutes=11)) != []
