"""The production runtime: real APScheduler (AsyncIOScheduler) waking a worker on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.base import RecordingAdapter
from bot.clock import SimulatedClock
from bot.messages import plain_text
from bot.runtime import MATERIALISE_JOB, TICK_JOB, JobPolicy, Runtime, serve
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import Notification
from bot.worker import Worker
from tests.conftest import SCHEDULES, local


def test_scheduler_ticks_the_worker_and_shuts_down_cleanly(engine: Engine) -> None:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    clock = SimulatedClock(local(2022, 5, 23, 8, 0))
    with session_scope(engine) as session:
        import_schedule(session, spec, now=clock.now(), horizon_days=62)
    adapter = RecordingAdapter()
    worker = Worker(engine, adapter, clock, address=lambda _s, person, _p: person.name)
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        for _ in range(100):  # the scheduler is running; business time has not moved
            await asyncio.sleep(0.02)
            if runtime.scheduler.running:
                break
        tick = runtime.scheduler.get_job(TICK_JOB)
        nightly = runtime.scheduler.get_job(MATERIALISE_JOB)
        assert tick.coalesce is True and tick.max_instances == 1 and tick.misfire_grace_time == 300
        assert nightly.coalesce is True and nightly.misfire_grace_time == 6 * 3600
        await asyncio.sleep(0.3)
        before = len(adapter.sent)
        clock.set(local(2022, 5, 26, 8, 30))  # move business time: task 4's reminder is due
        for _ in range(200):
            await asyncio.sleep(0.02)
            if any("党组专题研究" in plain_text(m.message) for m in adapter.sent):
                break
        # a tick after the clock moved sent it (how many ticks ran depends on the machine's load)
        assert any("党组专题研究" in plain_text(m.message) for m in adapter.sent[before:])
        stop.set()
        await server

    asyncio.run(scenario())
    assert not runtime.scheduler.running
    with Session(engine) as session:
        assert not session.exec(select(Notification).where(Notification.state == "claimed")).all()
    # nothing sent twice by the many ticks
    texts = [(m.chat_id, plain_text(m.message)) for m in adapter.sent]
    assert len(texts) == len(set(texts))


def test_shutdown_releases_claims(engine: Engine) -> None:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    clock = SimulatedClock(local(2022, 5, 23, 9, 0))
    with session_scope(engine) as session:
        import_schedule(session, spec, now=clock.now(), horizon_days=62)
    worker = Worker(
        engine,
        RecordingAdapter(),
        clock,
        address=lambda _s, p, _p: p.name,
        lease=timedelta(hours=1),
    )
    worker.engine.plan(clock.now())
    claimed = worker.dispatcher.claim(clock.now())
    assert claimed
    assert Runtime(worker, JobPolicy()).stop() == len(claimed)
    with Session(engine) as session:
        rows = session.exec(select(Notification).where(Notification.id.in_(claimed))).all()  # type: ignore[attr-defined]
        assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
