"""`dutybot run`: the production process.  APScheduler wakes it; the database decides.

Two loops share one event loop:

- **planning**, woken by APScheduler every ``tick_seconds`` (in-memory job store, nothing of
  ours pickled): plan what falls due within the next minutes (with its send-at instant),
  plan digests, gather into bundles -- in a thread, never on the event loop; and nightly at
  02:00 the occurrences' horizon rolls forward.  Jobs ``coalesce`` with a generous
  ``misfire_grace_time`` (APScheduler's 1-second default would silently drop a late run) and
  ``max_instances=1``.
- **sending**, a loop that sends while deliveries are due and otherwise sleeps until the
  next one's instant (or until planning wakes it): the first message of a 09:00 burst leaves
  at 09:00, not at the next tick.

The process starts and keeps running while the database or a platform is down: every
failure is logged once per kind, retried with backoff, and reported by /healthz.  SIGTERM
lets sends in flight finish (bounded), hands claims back and exits without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import texts
from bot.logs import log_event
from bot.store.db import checkpoint
from bot.worker import Worker

if TYPE_CHECKING:
    from bot.web.server import WebServer

log = logging.getLogger("dutybot.runtime")

TICK_JOB, MATERIALISE_JOB, HEARTBEAT_JOB = "tick", "materialise", "heartbeat"
CHECKPOINT_JOB = "checkpoint"


@dataclass(frozen=True)
class JobPolicy:
    tick_seconds: float = 5.0
    tick_grace: timedelta = timedelta(minutes=5)
    nightly_grace: timedelta = timedelta(hours=6)
    timezone: str = "Asia/Shanghai"
    idle_seconds: float = 30.0  # the sender looks again at least this often (other workers)
    max_backoff: float = 60.0  # seconds between retries while the store is down
    # the first claim after a sleep is small: the first message of a burst leaves as soon as
    # its own message is composed, not after a whole batch's (~150 ms for 200)
    first_batch: int = 10
    # SQLite's log is checkpointed by this job, not by whichever commit of a tick or a send
    # crosses its size (bot.store.db.WAL_CHECKPOINT_PAGES)
    checkpoint_seconds: float = 10.0
    # after an outage the horizon rolls once the catch-up's first messages have left (or
    # after this many seconds): both are CPU work in this one process, and rolling 10k tasks
    # beside the sender's first round held the first message back by a quarter of a second
    first_round_wait: float = 10.0


@dataclass
class Health:
    """What /healthz reports about this process (the store is checked live there)."""

    store_ok: bool = True
    store_error: str | None = None
    ticks: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class Runtime:
    def __init__(self, worker: Worker, policy: JobPolicy) -> None:
        self.worker = worker
        self.policy = policy
        self.scheduler = AsyncIOScheduler(timezone=policy.timezone)
        self.health = Health()
        self.wake = asyncio.Event()
        self._sent_round = asyncio.Event()  # the sender has claimed and sent a round
        self._sender: asyncio.Task[None] | None = None
        self._startup: asyncio.Task[None] | None = None
        self._stopping = False
        self._backoff = 1.0

    @property
    def ticks(self) -> int:
        return self.health.ticks

    def _failed(self, what: str, exc: BaseException) -> None:
        """Log a failure once per kind and message (not once per tick), keep it for health."""
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self.health.errors.get(what) != reason:
            log.error("%s failed: %s", what, reason)
        self.health.errors[what] = reason
        self.health.store_ok, self.health.store_error = False, reason

    def _ok(self, what: str) -> None:
        if what in self.health.errors:
            log.warning("%s works again", what)
            del self.health.errors[what]
        if not self.health.errors:
            self.health.store_ok, self.health.store_error = True, None

    def _job(self, func: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A scheduler job that ends quietly when a stop cancels it: APScheduler's shutdown
        cancels the jobs still running (a tick at the moment of SIGTERM) and would log the
        CancelledError as the job's failure, with a traceback.  Its thread finishes its own
        transaction, so nothing is half-written."""

        @functools.wraps(func)
        async def run() -> None:
            try:
                await func()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise

        return run

    async def _tick(self, *, digests: bool = True) -> bool:
        """One planning pass; True when it gave the sender deliveries (and woke it)."""
        try:
            now = self.worker.clock.now()
            started = time.perf_counter()
            planned, digests_, gathered = await asyncio.to_thread(
                functools.partial(self.worker.plan_pass, now, digests=digests)
            )
            self.health.ticks += 1
            if planned or digests_ or gathered.bundled or gathered.dead:
                log_event(
                    log,
                    "tick",
                    planned=planned,
                    digests=digests_,
                    bundled=gathered.bundled,
                    messages=gathered.bundles,
                    deliveries=gathered.deliveries,
                    waiting=gathered.waiting,
                    dead=gathered.dead,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            self._ok("planning")
            if gathered.deliveries:
                self.wake.set()
            return bool(gathered.deliveries)
        except Exception as exc:  # one bad tick must not stop the next; the rows are there
            self._failed("planning", exc)
            return False

    async def _materialise(self) -> None:
        try:
            added = await asyncio.to_thread(self.worker.materialise)
            log.info("materialised %d new occurrences", added)
            self._ok("materialise")
        except Exception as exc:
            self._failed("materialise", exc)

    async def _heartbeat(self) -> None:
        try:
            dispatcher = self.worker.dispatcher
            await asyncio.to_thread(dispatcher.heartbeat, dispatcher.in_flight())
            self._ok("heartbeat")
        except Exception as exc:
            self._failed("heartbeat", exc)

    async def _checkpoint(self) -> None:
        try:
            await asyncio.to_thread(checkpoint, self.worker.db)
            self._ok("checkpoint")
        except Exception as exc:
            self._failed("checkpoint", exc)

    async def _send_loop(self) -> None:
        """Send while anything is due; sleep until the next instant (or a wake-up)."""
        clock, dispatcher = self.worker.clock, self.worker.dispatcher
        woke = True
        while not self._stopping:
            # cleared before looking, never after: a wake-up from planning that lands while this
            # round claims or reads the next instant then ends the sleep below at once (cleared
            # after the look, it was lost, and new deliveries waited for the idle timeout)
            self.wake.clear()
            try:
                stats = await dispatcher.run_once(limit=self.policy.first_batch if woke else None)
                if stats.claimed:
                    self._sent_round.set()
                self._ok("sending")
                self._backoff = 1.0
                woke = False
                if stats.claimed:
                    continue
                due = await asyncio.to_thread(dispatcher.next_due)
            except Exception as exc:
                self._failed("sending", exc)
                due = clock.now() + timedelta(seconds=self._backoff)
                self._backoff = min(self._backoff * 2, self.policy.max_backoff)
            idle = clock.now() + timedelta(seconds=self.policy.idle_seconds)
            await clock.sleep_until(min(due, idle) if due else idle, self.wake)
            woke = True

    async def _first_pass(self) -> None:
        """Plan what fell due while the process was down and roll the horizon, then let the
        tick job run (it never overlaps this pass: ``max_instances`` covers only its own runs).
        The catch-up's messages are gathered and sent before the day's digests are composed
        (a digest is a message of its own: it never joins their bundles), and before the
        horizon rolls -- unless the outage outlasted the horizon, so that what is due now
        may not have its occurrence yet."""
        with contextlib.suppress(Exception):  # a template error shows when it is used
            await asyncio.to_thread(texts.warm, self.worker.dispatcher.lang)
        try:
            behind = await asyncio.to_thread(self.worker.engine.behind, self.worker.clock.now())
        except Exception:  # the store is down: roll first, as the nightly job would retry
            behind = True
        if behind:
            await self._materialise()
        self._sent_round.clear()
        caught_up = await self._tick(digests=False)
        if not behind:
            if caught_up:  # the catch-up's first round leaves first (JobPolicy.first_round_wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sent_round.wait(), self.policy.first_round_wait)
            await self._materialise()
        await self._tick()
        if not self._stopping and self.scheduler.running:
            self.scheduler.resume_job(TICK_JOB)

    async def start(self) -> None:
        """The sender starts first: what is already in the outbox (a restart after a crash)
        leaves at once, while the first planning pass -- which may be a long catch-up after
        an outage -- runs beside it and wakes it when it has gathered its bundles."""
        jobs = (
            (
                self._tick,
                IntervalTrigger(seconds=self.policy.tick_seconds),
                TICK_JOB,
                self.policy.tick_grace,
            ),
            (
                self._materialise,
                CronTrigger(hour=2, minute=0, timezone=self.policy.timezone),
                MATERIALISE_JOB,
                self.policy.nightly_grace,
            ),
            (
                self._heartbeat,
                IntervalTrigger(
                    seconds=max(self.worker.dispatcher.policy.lease.total_seconds() / 3, 1)
                ),
                HEARTBEAT_JOB,
                self.policy.tick_grace,
            ),
        )
        if self.worker.db.dialect.name == "sqlite":
            jobs += (
                (
                    self._checkpoint,
                    IntervalTrigger(seconds=self.policy.checkpoint_seconds),
                    CHECKPOINT_JOB,
                    self.policy.tick_grace,
                ),
            )
        for func, trigger, job_id, grace in jobs:
            self.scheduler.add_job(
                self._job(func),
                trigger,
                id=job_id,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(grace.total_seconds()),
                # the tick waits (paused) for the first pass
                **({"next_run_time": None} if job_id == TICK_JOB else {}),
            )
        self.scheduler.start()
        self._sender = asyncio.create_task(self._send_loop())
        self._startup = asyncio.create_task(self._first_pass())

    async def stop(self) -> int:
        """Stop waking up, let sends in flight finish (bounded), hand back the rest."""
        self._stopping = True
        self.worker.dispatcher._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.wake.set()
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()  # its thread finishes its transaction; nothing half-written
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._startup
        if self._sender is not None:
            grace = self.worker.dispatcher.policy.shutdown_grace
            done, _ = await asyncio.wait({self._sender}, timeout=grace)
            if not done:
                log.warning(
                    "sends still in flight after %.0fs; their leases bring them back", grace
                )
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._sender
        try:
            return await asyncio.to_thread(self.worker.shutdown)
        except Exception as exc:  # the store is down: the leases return the rows anyway
            self._failed("shutdown", exc)
            return 0


async def serve(
    runtime: Runtime | None,
    *,
    start_frontend: Callable[[], Awaitable[None]] | None = None,
    stop_frontend: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    web: WebServer | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully.

    ``runtime`` is None for ``dutybot web`` alone (no planning, no sending).  The web server
    binds first: a taken port fails before any platform is told where to post (a webhook
    arriving before its frontend has started is answered 503 and sent again)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    if web is not None:
        await web.start()
    try:
        if start_frontend:
            await start_frontend()
        if runtime is not None:
            await runtime.start()
        await stop.wait()
    finally:
        released = await runtime.stop() if runtime is not None else 0
        if stop_frontend:
            with contextlib.suppress(Exception):
                await stop_frontend()
        if web is not None:
            await web.stop()
        log.info("stopped; %d claimed deliveries released", released)
