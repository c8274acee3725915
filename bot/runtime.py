"""`dutybot run`: the production process.  APScheduler only wakes it; the database decides.

Jobs (in-memory job store, nothing of ours pickled):
- tick, every ``tick_seconds``: plan due occurrences, plan digests, dispatch the outbox;
- materialise, nightly at 02:00 in the schedules' timezone, and once at start.
Both jobs ``coalesce`` (a late or piled-up run happens once) with a generous
``misfire_grace_time`` (APScheduler's 1-second default would silently drop a run that
starts late under load), and ``max_instances=1`` so ticks never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.worker import Worker

log = logging.getLogger("dutybot.runtime")

TICK_JOB, MATERIALISE_JOB = "tick", "materialise"


@dataclass(frozen=True)
class JobPolicy:
    tick_seconds: float = 5.0
    tick_grace: timedelta = timedelta(minutes=5)
    nightly_grace: timedelta = timedelta(hours=6)
    timezone: str = "Asia/Shanghai"


class Runtime:
    def __init__(self, worker: Worker, policy: JobPolicy) -> None:
        self.worker = worker
        self.policy = policy
        self.scheduler = AsyncIOScheduler(timezone=policy.timezone)
        self.ticks = 0

    async def _tick(self) -> None:
        try:
            await self.worker.tick(drain=False)
            self.ticks += 1
        except Exception:  # one bad tick must not stop the next one; the rows are still there
            log.exception("tick failed")

    def _materialise(self) -> None:
        try:
            added = self.worker.materialise()
            log.info("materialised %d new occurrences", added)
        except Exception:
            log.exception("materialise failed")

    def start(self) -> None:
        self._materialise()
        self.scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.policy.tick_seconds),
            id=TICK_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self.policy.tick_grace.total_seconds()),
        )
        self.scheduler.add_job(
            self._materialise,
            CronTrigger(hour=2, minute=0, timezone=self.policy.timezone),
            id=MATERIALISE_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self.policy.nightly_grace.total_seconds()),
        )
        self.scheduler.start()

    def stop(self) -> int:
        """Stop waking up, then hand back whatever this worker claimed but did not send."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        return self.worker.shutdown()


async def serve(
    runtime: Runtime,
    *,
    start_frontend: Callable[[], Awaitable[None]] | None = None,
    stop_frontend: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    if start_frontend:
        await start_frontend()
    runtime.start()
    try:
        await stop.wait()
    finally:
        released = runtime.stop()
        if stop_frontend:
            await stop_frontend()
        log.info("stopped; %d claimed notifications released", released)
