"""The delivery contract, for every adapter: sent once and recorded, 429 honoured, backoff
without a cliff, outages spend no attempts, a gone recipient loses only that binding, a refused
message blames nobody, per-chat order, fenced claims, out-of-hours waits, release.

Each test runs once per platform harness (tests/fakes/contract.py) and per backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import SimulatedClock
from bot.dispatch import Dispatcher, SendPolicy
from bot.identities import bind
from bot.outbox import enqueue, expire, gather_all, notification_row, redrive
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Delivery, Notification, Person
from tests.conftest import local
from tests.fakes.chat import SCHEDULE_YAML
from tests.fakes.contract import (
    GONE,
    HARNESSES,
    REFUSED,
    RETRY_AFTER,
    TIMEOUT,
    TRANSIENT,
    Harness,
    ScriptedAdapter,
)

NOW = local(2022, 6, 1, 9, 0)  # a Wednesday, inside working hours
SCHEDULE = "e2e-2022"


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with HARNESSES[request.param]() as found:
        yield found


def seeded(engine: Engine, harness: Harness) -> dict[str, int]:
    """The small chat schedule, every person bound on the harness's platform (chat n for the
    n-th person); returns name → person id."""
    spec = load_schedule("e2e.yaml", text=SCHEDULE_YAML).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=local(2022, 5, 23, 8, 0), horizon_days=62)
        people = sorted(session.exec(select(Person)).all(), key=lambda p: p.id or 0)
        for n, person in enumerate(people):
            bind(
                session,
                person=person,
                platform=harness.platform,
                chat_id=harness.chat(n),
                now=NOW,
            )
        return {p.name: p.id for p in people if p.id is not None}


def chat_of(engine: Engine, person_id: int, platform: str) -> str:
    with Session(engine) as session:
        person = session.get(Person, person_id)
        assert person is not None
        return session.exec(
            select(ChatBinding.chat_id).where(
                ChatBinding.identity_id == person.identity_id, ChatBinding.platform == platform
            )
        ).one()


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
                    schedule_id=SCHEDULE,
                    payload={"person": "测试", "reason": key},
                )
            ],
        )


def gather(engine: Engine, now: datetime, platforms: list[str]) -> None:
    gather_all(lambda: session_scope(engine), now, platforms=platforms, ahead=timedelta(0))


def sender(engine: Engine, harness: Harness, clock: SimulatedClock, **policy: object) -> Dispatcher:
    return Dispatcher(
        engine,
        harness.adapter,
        clock,
        worker="w1",
        policy=SendPolicy(**policy),  # type: ignore[arg-type]
    )


def delivery(engine: Engine, key: str) -> Delivery:
    with Session(engine) as session:
        note = session.exec(select(Notification).where(Notification.key == key)).one()
        return session.exec(select(Delivery).where(Delivery.bundle_id == note.bundle_id)).one()


def notification(engine: Engine, key: str) -> Notification:
    with Session(engine) as session:
        return session.exec(select(Notification).where(Notification.key == key)).one()


def test_sent_once_and_recorded(engine: Engine, harness: Harness) -> None:
    people = seeded(engine, harness)
    queue(engine, people["熊伟"], "k1")
    gather(engine, NOW, [harness.platform])
    clock = SimulatedClock(NOW)

    async def scenario() -> None:
        d = sender(engine, harness, clock)
        stats = await d.drain()
        assert (stats.sent, stats.failed) == (1, 0), delivery(engine, "k1").last_error
        assert (await d.drain()).claimed == 0  # nothing sent twice

    asyncio.run(scenario())
    chat = chat_of(engine, people["熊伟"], harness.platform)
    [text] = harness.received(chat)
    assert "k1" in text
    sent = delivery(engine, "k1")
    assert sent.state == "sent" and sent.sent_at == NOW and sent.message_ref
    assert notification(engine, "k1").state == "sent"


def test_429_waits_for_retry_after_and_nothing_goes_out_before(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    queue(engine, people["熊伟"], "k429")
    gather(engine, NOW, [harness.platform])
    harness.fail(RETRY_AFTER, chat, seconds=120)
    clock = SimulatedClock(NOW)

    async def scenario() -> None:  # one event loop, as in production
        d = sender(engine, harness, clock)
        await d.drain()
        waiting = delivery(engine, "k429")
        assert waiting.state == "pending" and waiting.not_before >= NOW + timedelta(seconds=120)
        assert waiting.attempts == 0  # a 429 is not the message's fault
        clock.advance(timedelta(seconds=60))
        assert (await d.drain()).claimed == 0  # not before retry_after
        clock.advance(timedelta(seconds=61))
        assert (await d.drain()).sent == 1

    asyncio.run(scenario())
    assert harness.attempts(chat) == 2 and len(harness.received(chat)) == 1


def test_transient_failures_back_off_without_a_cliff_then_expire_to_a_dead_letter(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    queue(engine, people["熊伟"], "k5xx")
    gather(engine, NOW, [harness.platform])
    harness.fail(TRANSIENT, chat, times=12)
    clock = SimulatedClock(NOW)
    delays: list[float] = []

    async def scenario() -> None:
        # a large circuit threshold: this is one chat's trouble, not an outage
        d = sender(engine, harness, clock, circuit_failures=100)
        for _ in range(12):
            await d.drain()
            waiting = delivery(engine, "k5xx")
            assert waiting.state == "pending"  # eight attempts are no longer the end
            delays.append((waiting.not_before - clock.now()).total_seconds())
            clock.set(waiting.not_before)
        # relevance of an admin alert is 7 days: past it, a dead letter, re-drivable
        with session_scope(engine) as session:
            assert expire(session, NOW + timedelta(days=8)) == 1
        assert delivery(engine, "k5xx").state == "dead"
        assert notification(engine, "k5xx").state == "dead"
        with session_scope(engine) as session:
            assert redrive(session, now=NOW + timedelta(days=8)) == 1
        clock.set(NOW + timedelta(days=8, hours=1))
        await d.drain()

    asyncio.run(scenario())
    assert delays[:4] == [30.0, 60.0, 120.0, 240.0]
    assert max(delays) == 3600.0  # capped at an hour
    assert delivery(engine, "k5xx").state == "sent"
    assert notification(engine, "k5xx").state == "sent"


def test_an_outage_opens_the_circuit_and_spends_no_attempts(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    names = ["张敏", "熊伟", "李强", "邓清华"]
    for n in range(12):
        queue(engine, people[names[n % 4]], f"ko{n}")
    gather(engine, NOW, [harness.platform])
    harness.fail_all(TRANSIENT, times=5)  # the platform refuses everything for a while
    clock = SimulatedClock(NOW)

    async def scenario() -> None:
        d = sender(engine, harness, clock, circuit_failures=3, concurrency=1)
        await d.drain()
        assert d.circuits[harness.platform].is_open
        with Session(engine) as session:
            rows = session.exec(select(Delivery)).all()
            assert all(r.state == "pending" for r in rows)
            assert max(r.attempts for r in rows) <= 1  # the outage spent nobody's attempts
        # probes: one delivery at a time while it is down, then everything once it is back
        for _ in range(10):
            clock.advance(timedelta(minutes=5))
            await d.drain()
        assert not d.circuits[harness.platform].is_open

    asyncio.run(scenario())
    with Session(engine) as session:
        assert {r.state for r in session.exec(select(Delivery)).all()} == {"sent"}


def test_a_gone_recipient_loses_only_that_binding_and_admins_are_told(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    gone = people["熊伟"]
    chat = chat_of(engine, gone, harness.platform)
    # 熊伟 is also reachable somewhere else: a second platform in memory
    other = ScriptedAdapter(platform="spare")
    with session_scope(engine) as session:
        person = session.get(Person, gone)
        assert person is not None
        bind(session, person=person, platform="spare", chat_id="spare-1", now=NOW)
    queue(engine, gone, "kgone")
    gather(engine, NOW, [harness.platform, "spare"])
    queue(engine, gone, "kgone2", now=NOW + timedelta(minutes=2))
    gather(engine, NOW + timedelta(minutes=2), [harness.platform, "spare"])
    harness.fail(GONE, chat)
    clock = SimulatedClock(NOW + timedelta(minutes=2))
    d = Dispatcher(engine, {harness.platform: harness.adapter, "spare": other}, clock, worker="w")

    async def scenario() -> None:
        await d.drain()
        gather(engine, clock.now(), [harness.platform, "spare"])  # the next planning pass
        await d.drain()

    asyncio.run(scenario())
    with Session(engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == chat)).one()
        assert binding.unreachable_reason and binding.active
        spare = session.exec(select(ChatBinding).where(ChatBinding.platform == "spare")).one()
        assert spare.unreachable_reason is None
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "recipient_unreachable")
        ).all()
    # losing one platform does not silence the other: both messages reached the spare chat
    assert len(other.sent["spare-1"]) == 2
    assert harness.attempts(chat) == 1  # not tried again on the platform that said "gone"
    # the schedule's admin (李强) heard about it
    admin_chat = chat_of(engine, people["李强"], harness.platform)
    alerts = [t for t in harness.received(admin_chat) if "熊伟" in t]
    assert len(alerts) == 1


def test_a_refused_message_is_not_blamed_on_the_person(engine: Engine, harness: Harness) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    queue(engine, people["熊伟"], "kbad")
    gather(engine, NOW, [harness.platform])
    harness.fail(REFUSED, chat)
    asyncio.run(sender(engine, harness, SimulatedClock(NOW)).drain())
    with Session(engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == chat)).one()
        assert binding.unreachable_reason is None
        assert session.exec(
            select(AuditEvent).where(AuditEvent.action == "notification_failed")
        ).all()
    assert delivery(engine, "kbad").state == "failed"
    assert notification(engine, "kbad").state == "failed"


def test_a_timeout_counts_as_a_possible_duplicate_and_backs_off(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    queue(engine, people["熊伟"], "kslow")
    gather(engine, NOW, [harness.platform])
    harness.fail(TIMEOUT, chat)
    clock = SimulatedClock(NOW)
    asyncio.run(sender(engine, harness, clock).drain())
    waiting = delivery(engine, "kslow")
    assert waiting.state == "pending" and waiting.timeouts == 1
    assert waiting.not_before == NOW + timedelta(seconds=30)


def test_messages_to_one_chat_keep_their_order_under_failures(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    for n in range(5):  # five notices a minute apart: five messages, in this order
        queue(engine, people["熊伟"], f"order{n}", now=NOW + timedelta(minutes=n))
        gather(engine, NOW + timedelta(minutes=n), [harness.platform])
    harness.fail(TRANSIENT, chat)
    harness.fail(RETRY_AFTER, chat, seconds=10)
    clock = SimulatedClock(NOW + timedelta(minutes=5))

    async def scenario() -> None:
        d = sender(engine, harness, clock, circuit_failures=100)
        for _ in range(20):
            await d.drain()
            clock.advance(timedelta(seconds=31))

    asyncio.run(scenario())
    got = [
        next(k for k in (f"order{n}" for n in range(5)) if k in t) for t in harness.received(chat)
    ]
    assert got == [f"order{n}" for n in range(5)]


def test_a_lapsed_claim_cannot_overwrite_a_newer_one(engine: Engine, harness: Harness) -> None:
    people = seeded(engine, harness)
    queue(engine, people["熊伟"], "kfence")
    gather(engine, NOW, [harness.platform])
    clock = SimulatedClock(NOW)
    slow = sender(engine, harness, clock, lease=timedelta(seconds=5))
    [job] = slow.claim(NOW)
    # w1 stalls past its lease; w2 takes the delivery over and sends it
    late = NOW + timedelta(seconds=6)
    clock.set(late)
    other = Dispatcher(engine, harness.adapter, clock, worker="w2")
    assert asyncio.run(other.drain()).sent == 1
    # w1's outcome arrives: fenced out, the newer record stands
    from bot.adapters.base import Delivery as Receipt
    from bot.dispatch import DispatchStats

    job.outcome = Receipt(message_ref="stale")
    stats = DispatchStats()
    slow.record([job], stats)
    assert stats.fenced == 1 and stats.sent == 0
    assert delivery(engine, "kfence").message_ref != "stale"


def test_out_of_hours_deliveries_wait_for_the_next_working_morning(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    friday_night = local(2022, 6, 10, 21, 0)
    queue(engine, people["熊伟"], "knight", now=friday_night)
    gather(engine, friday_night, [harness.platform])
    clock = SimulatedClock(friday_night)
    asyncio.run(sender(engine, harness, clock).drain())
    waiting = delivery(engine, "knight")
    assert waiting.state == "pending" and waiting.not_before == local(2022, 6, 13, 8, 30)
    assert waiting.attempts == 0
    assert harness.attempts(chat_of(engine, people["熊伟"], harness.platform)) == 0


def test_release_hands_claimed_deliveries_back(engine: Engine, harness: Harness) -> None:
    people = seeded(engine, harness)
    for n in range(3):
        queue(engine, people["熊伟"], f"kr{n}", now=NOW + timedelta(minutes=n))
        gather(engine, NOW + timedelta(minutes=n), [harness.platform])
    clock = SimulatedClock(NOW + timedelta(minutes=3))
    d = sender(engine, harness, clock, lease=timedelta(minutes=10))
    assert len(d.claim(clock.now())) == 3
    other = Dispatcher(engine, harness.adapter, clock, worker="w2")
    assert other.claim(clock.now()) == []  # leased to w1
    assert d.release() == 3
    assert len(other.claim(clock.now())) == 3
    # an expired lease is reclaimed by anyone
    assert d.claim(clock.now() + timedelta(minutes=11)) != []


def test_a_restarted_worker_takes_back_what_its_previous_run_held(
    engine: Engine, harness: Harness
) -> None:
    people = seeded(engine, harness)
    queue(engine, people["熊伟"], "krestart")
    gather(engine, NOW, [harness.platform])
    clock = SimulatedClock(NOW)
    crashed = sender(engine, harness, clock)
    crashed.register()
    assert len(crashed.claim(NOW)) == 1  # ... and the process dies here
    clock.advance(timedelta(seconds=5))  # well inside the 2-minute lease
    again = sender(engine, harness, clock)  # same name, new incarnation
    assert asyncio.run(again.drain()).sent == 1  # at once, not after the lease


def test_every_outcome_is_one_log_line(
    engine: Engine, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    people = seeded(engine, harness)
    chat = chat_of(engine, people["熊伟"], harness.platform)
    queue(engine, people["熊伟"], "klog")
    gather(engine, NOW, [harness.platform])
    harness.fail(TRANSIENT, chat)
    clock = SimulatedClock(NOW)
    with caplog.at_level("INFO", logger="dutybot.dispatch"):

        async def scenario() -> None:
            d = sender(engine, harness, clock, circuit_failures=100)
            await d.drain()
            clock.advance(timedelta(seconds=31))
            await d.drain()

        asyncio.run(scenario())
    lines = [r for r in caplog.records if r.getMessage() == "send_outcome"]
    outcomes = [r.__dict__["dutybot_fields"]["outcome"] for r in lines]
    assert outcomes == ["retry", "sent"]


def test_a_claim_is_composed_in_slices_of_whole_chats_the_first_one_small() -> None:
    """The first message of a round leaves once the first few chats' messages are composed
    (SendPolicy.prepare_first), the rest follow in larger slices; a chat's deliveries are
    never split between slices (one chat worker keeps their order)."""
    from bot.dispatch import _Job, _slices

    def job(n: int, chat: int) -> _Job:
        return _Job(n, n, chat, "telegram", "t", 0)

    jobs = [job(n, chat) for n, chat in enumerate([1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 8, 9])]
    parts = _slices(jobs, size=5, first=3)
    assert [[j.binding_id for j in part] for part in parts] == [
        [1, 1, 2],
        [3, 4, 5],
        [6, 6, 6, 7, 8],
        [9],
    ]
    assert [len(p) for p in _slices(jobs, size=50, first=SendPolicy().prepare_first)] == [4, 8]
