"""The production runtime: real APScheduler (AsyncIOScheduler) waking a worker on an injected
clock; the sender leaving at the exact instant; `dutybot run` as a real process (SIGTERM, a
database that is down)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.base import Delivery as Receipt
from bot.adapters.base import OutboundMessage, RecordingAdapter
from bot.clock import SimulatedClock
from bot.dispatch import Dispatcher
from bot.identities import bind_everyone
from bot.messages import plain_text
from bot.outbox import GatherStats
from bot.runtime import CHECKPOINT_JOB, MATERIALISE_JOB, TICK_JOB, JobPolicy, Runtime, serve
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.store.models import Delivery
from bot.worker import Worker
from tests.conftest import SCHEDULES, local, until
from tests.fakes.outbox import named_worker, queue_alone, seed_bound


def imported(engine: Engine, at: object) -> None:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=at, horizon_days=62)  # type: ignore[arg-type]


class Stamped(RecordingAdapter):
    """Records the business instant each message left at."""

    def __init__(self, clock: SimulatedClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[object] = []

    async def send(self, message: OutboundMessage) -> Receipt:
        self.at.append(self.clock.now())
        return await super().send(message)


def test_scheduler_ticks_the_worker_and_shuts_down_cleanly(engine: Engine) -> None:
    clock = SimulatedClock(local(2022, 5, 23, 8, 0))
    imported(engine, clock.now())
    adapter = RecordingAdapter()
    worker = named_worker(engine, adapter, clock)
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))  # type: ignore[arg-type]

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        # the scheduler is running; business time has not moved
        await until(lambda: runtime.scheduler.running, "runtime.scheduler.running")
        tick = runtime.scheduler.get_job(TICK_JOB)
        nightly = runtime.scheduler.get_job(MATERIALISE_JOB)
        assert tick.coalesce is True and tick.max_instances == 1 and tick.misfire_grace_time == 300
        assert nightly.coalesce is True and nightly.misfire_grace_time == 6 * 3600
        await asyncio.sleep(0.3)
        before = len(adapter.sent)
        clock.set(local(2022, 5, 26, 8, 30))  # move business time: task 4's reminder is due
        await until(
            lambda: any("党组专题研究" in plain_text(m.message) for m in adapter.sent),
            "any('党组专题研究' in plain_text(m.message) for m in adapter.sent)",
        )
        assert any("党组专题研究" in plain_text(m.message) for m in adapter.sent[before:])
        stop.set()
        await server

    asyncio.run(scenario())
    assert not runtime.scheduler.running
    with Session(engine) as session:
        assert not session.exec(select(Delivery).where(Delivery.state == "claimed")).all()
    texts = [(m.chat_id, plain_text(m.message)) for m in adapter.sent]
    assert len(texts) == len(set(texts))  # nothing sent twice by the many ticks


def test_the_first_message_of_a_burst_leaves_at_its_instant(engine: Engine) -> None:
    """Planned ahead and bundled before 08:30, the morning's reminders wait in the outbox
    with their send-at instant; the sender sleeps until it and leaves then, not a tick later."""
    clock = SimulatedClock(local(2022, 5, 26, 8, 28, 50))
    imported(engine, local(2022, 5, 23, 8, 0))
    adapter = Stamped(clock)
    worker = named_worker(engine, adapter, clock)
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))  # type: ignore[arg-type]

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        await asyncio.sleep(0.5)
        assert adapter.sent == []
        clock.set(local(2022, 5, 26, 8, 29, 59))
        await asyncio.sleep(0.3)
        assert adapter.sent == []  # not one second early
        with Session(engine) as session:  # ... but ready, with their instant
            due = session.exec(select(Delivery).where(Delivery.state == "pending")).all()
            assert due and min(d.not_before for d in due) == local(2022, 5, 26, 8, 30)
        clock.set(local(2022, 5, 26, 8, 30))
        await until(lambda: adapter.sent, "adapter.sent")
        stop.set()
        await server

    asyncio.run(scenario())
    assert adapter.sent and set(adapter.at) == {local(2022, 5, 26, 8, 30)}


class HeldWorker(Worker):
    """A worker whose planning pass waits until the test lets it go (a long catch-up)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = threading.Event()
        self.entered = threading.Event()  # a pass has begun (and may be held)
        self.passes = 0

    def plan_pass(self, now: datetime, *, digests: bool = True) -> tuple[int, int, GatherStats]:
        self.entered.set()
        self.hold.wait(timeout=30)
        self.passes += 1
        return super().plan_pass(now, digests=digests)


def test_the_sender_starts_before_the_first_planning_pass(engine: Engine) -> None:
    """After a crash the outbox holds deliveries already planned: they leave at once, while
    the first planning pass (after a long outage, a long catch-up) is still running."""
    clock = SimulatedClock(local(2022, 5, 26, 8, 30))
    imported(engine, local(2022, 5, 23, 8, 0))
    adapter = Stamped(clock)
    with session_scope(engine) as session:
        bind_everyone(session, platform=adapter.platform, now=clock.now())
    Worker(engine, adapter, clock).plan_pass(clock.now())  # planned before the crash
    worker = HeldWorker(engine, adapter, clock)
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        await until(lambda: adapter.sent, "adapter.sent")
        assert adapter.sent and worker.passes == 0  # sent while the first pass is held
        assert runtime.scheduler.get_job(TICK_JOB).next_run_time is None  # waits for it
        worker.hold.set()
        await until(lambda: worker.passes >= 3, "worker.passes >= 3")
        assert worker.passes >= 3  # the catch-up, the digests, then the tick as usual
        stop.set()
        await server

    asyncio.run(scenario())


class Rolling(Worker):
    """Notes how many messages had left when each roll of the horizon began."""

    def __init__(self, *args: Any, sent: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = sent
        self.rolled_after: list[int] = []

    def materialise(self) -> int:
        self.rolled_after.append(len(self.sent))
        return super().materialise()


def test_after_an_outage_the_first_messages_leave_before_the_horizon_rolls(
    engine: Engine,
) -> None:
    """Rolling the horizon is work of the same process as composing the catch-up's first
    messages: the first pass waits for the sender's first round before it rolls."""
    clock = SimulatedClock(local(2022, 5, 26, 8, 30))
    imported(engine, local(2022, 5, 23, 8, 0))  # its horizon reaches far past today
    adapter = Stamped(clock)
    with session_scope(engine) as session:
        bind_everyone(session, platform=adapter.platform, now=clock.now())
    worker = Rolling(engine, adapter, clock, sent=adapter.sent)
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        await until(lambda: worker.rolled_after, "worker.rolled_after")
        stop.set()
        await server

    asyncio.run(scenario())
    assert worker.rolled_after[0] > 0


def test_a_tick_running_at_a_stop_ends_without_an_error(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while a tick is planning: the scheduler's shutdown cancels the job, and that
    is the end of it, not a failure logged with a CancelledError traceback."""
    clock = SimulatedClock(local(2022, 5, 26, 8, 30))
    imported(engine, local(2022, 5, 23, 8, 0))
    worker = HeldWorker(engine, RecordingAdapter(), clock)
    worker.hold.set()
    runtime = Runtime(worker, JobPolicy(tick_seconds=0.05))

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        # the first pass is over: the tick job runs now
        await until(lambda: worker.passes >= 2, "worker.passes >= 2")
        worker.hold.clear()
        worker.entered.clear()
        # a tick is inside its planning pass, held there
        await until(lambda: worker.entered.is_set(), "worker.entered.is_set()")
        assert worker.entered.is_set()
        stop.set()
        await server
        worker.hold.set()

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, [r.getMessage() for r in failures]


class LateNews(Dispatcher):
    """Once armed, planning commits a new delivery (and wakes the sender, as a tick does)
    while the sender is reading its next instant: the moment a wake-up could be lost."""

    def __init__(self, *args: Any, meanwhile: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meanwhile = meanwhile
        self.armed = threading.Event()

    def next_due(self) -> datetime | None:
        due = super().next_due()
        if self.armed.is_set():
            self.armed.clear()
            self.meanwhile()
        return due


def test_a_wake_up_during_the_senders_look_is_not_lost(engine: Engine) -> None:
    """Planning that ends while the sender looks for its next instant wakes it: the new
    delivery leaves now, not after the idle timeout (here: never, the clock stands still)."""
    clock = SimulatedClock(local(2022, 6, 1, 10, 0))
    adapter = Stamped(clock)
    people = seed_bound(engine, platform=adapter.platform, imported=local(2022, 5, 23, 8, 0))
    worker = HeldWorker(engine, adapter, clock)
    worker.hold.set()
    runtime = Runtime(worker, JobPolicy(tick_seconds=3600, idle_seconds=3600))
    loop: asyncio.AbstractEventLoop | None = None

    def meanwhile() -> None:  # in the sender's thread: commit, then wake it as a tick would
        queue_alone(engine, [people["熊伟"]], 1, start=clock.now(), platforms=[adapter.platform])
        assert loop is not None
        woken = threading.Event()
        loop.call_soon_threadsafe(lambda: (runtime.wake.set(), woken.set()))
        assert woken.wait(5)

    worker.dispatcher = LateNews(engine, adapter, clock, worker="late", meanwhile=meanwhile)

    async def scenario() -> None:
        nonlocal loop
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        # the catch-up and the digests are planned, the sender is idle
        await until(lambda: worker.passes >= 2, "worker.passes >= 2")
        await asyncio.sleep(0.3)
        before = len(adapter.sent)
        worker.dispatcher.armed.set()
        runtime.wake.set()  # one round: it finds nothing, looks for the next instant ...
        # ... and the delivery committed meanwhile leaves at once
        await until(
            lambda: any("msg-00000" in plain_text(m.message) for m in adapter.sent[before:]),
            "any('msg-00000' in plain_text(m.message) for m in adapter.sent[before:])",
        )
        assert any("msg-00000" in plain_text(m.message) for m in adapter.sent[before:])
        stop.set()
        await server

    asyncio.run(scenario())


def test_shutdown_releases_claims(engine: Engine) -> None:
    clock = SimulatedClock(local(2022, 5, 23, 9, 0))
    imported(engine, clock.now())
    worker = named_worker(engine, RecordingAdapter(), clock, lease=timedelta(hours=1))
    worker.plan_pass(clock.now())  # type: ignore[attr-defined]
    claimed = [job.delivery_id for job in worker.dispatcher.claim(clock.now())]  # type: ignore[attr-defined]
    assert claimed
    assert asyncio.run(Runtime(worker, JobPolicy()).stop()) == len(claimed)  # type: ignore[arg-type]
    with Session(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.id.in_(claimed))).all()  # type: ignore[attr-defined]
        assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}


def _run(database: str, tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": database, "DUTYBOT_TICK_SECONDS": "0.5"}
    env.pop("TELEGRAM_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--console"],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Output:
    """What a child process printed so far, read by threads (a pipe left unread would block
    it), so that a test waits for what it expects rather than for a fixed time."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((process.stdout, self.out), (process.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in iter(stream.readline, ""):
            into.append(line)

    def wait_for(self, text: str, *, stderr: bool = False, timeout: float = 60.0) -> None:
        lines = self.err if stderr else self.out
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(lines)):
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s: {lines[-20:]}"
            time.sleep(0.05)


def _stop(process: subprocess.Popen[str], output: _Output) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    for reader in output.readers:
        reader.join(timeout=10)
    return "".join(output.out), "".join(output.err)


def test_sigterm_stops_the_process_cleanly(tmp_path: Path) -> None:
    process = _run(f"sqlite:///{tmp_path / 'run.db'}", tmp_path)
    output = _Output(process)
    output.wait_for("dutybot 已启动")  # started; planning and sending under way
    time.sleep(1)
    assert process.poll() is None
    out, err = _stop(process, output)
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "CancelledError" not in err
    assert "dutybot 已启动" in out


def test_run_waits_for_a_database_that_is_down(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = _run(f"postgresql://postgres@127.0.0.1:{port}/test", tmp_path)
    output = _Output(process)
    output.wait_for("数据库暂时无法连接", stderr=True)
    time.sleep(2)  # a few retries later: still running, still waiting for the store
    assert process.poll() is None
    _out, err = _stop(process, output)
    assert "数据库暂时无法连接" in err  # said once, not a traceback a second
    assert err.count("数据库暂时无法连接") == 1
    assert "Traceback" not in err


def test_the_runtime_checkpoints_sqlites_log_itself(tmp_path: Path) -> None:
    """A tick's commit no longer copies the write-ahead log into the database when the log
    passes SQLite's default 1,000 pages: the runtime's own job does, between ticks."""
    path = tmp_path / "store.db"
    engine = open_store(f"sqlite:///{path}")
    clock = SimulatedClock(local(2022, 5, 23, 8, 0))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 16384
    imported(engine, clock.now())  # some hundred pages, all of them in the log
    before = path.stat().st_size
    runtime = Runtime(
        named_worker(engine, RecordingAdapter(), clock),  # type: ignore[arg-type]
        JobPolicy(tick_seconds=3600, checkpoint_seconds=0.05),
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(runtime, stop=stop))
        await until(lambda: runtime.scheduler.get_job(CHECKPOINT_JOB), "the checkpoint job")
        await until(lambda: path.stat().st_size > before, "the log copied into the database")
        stop.set()
        await server

    asyncio.run(scenario())
    assert "checkpoint" not in runtime.health.errors
    engine.dispose()
