"""One worker: the engine (plan), the outbox (gather into bundles) and the sender, one clock.

``tick`` is what the runtime runs and what the demo and the tests call directly under a
simulated clock.  All business state is in the database, so any number of workers may tick
against one PostgreSQL database.  Database work runs in a thread, never on the event loop:
a slow or locked store must not freeze the chat that shares the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine as DbEngine

from bot import metrics
from bot.adapters.base import ChatAdapter
from bot.clock import Clock
from bot.dispatch import Dispatcher, DispatchStats, SendPolicy
from bot.engine import Engine
from bot.outbox import GatherStats, expire
from bot.store.db import session_scope

log = logging.getLogger("dutybot.worker")

# How far ahead messages are planned and gathered: a 09:00 burst is in the outbox, bundled,
# with its send-at instant, before 09:00, so the sender can leave at the instant.
LOOKAHEAD = timedelta(seconds=90)


@dataclass
class TickResult:
    planned: int
    digests: int
    gathered: GatherStats
    dispatch: DispatchStats


class Worker:
    def __init__(
        self,
        db: DbEngine,
        adapters: Mapping[str, ChatAdapter] | ChatAdapter,
        clock: Clock,
        *,
        lang: str = "zh-CN",
        horizon_days: int = 62,
        lease: timedelta = timedelta(minutes=2),
        name: str | None = None,
        lookahead: timedelta = LOOKAHEAD,
        policy: SendPolicy | None = None,
    ) -> None:
        self.db, self.clock, self.lookahead = db, clock, lookahead
        self.engine = Engine(db, horizon_days=horizon_days)
        policy = policy or SendPolicy(lease=lease)
        self.dispatcher = Dispatcher(db, adapters, clock, worker=name, lang=lang, policy=policy)

    @property
    def name(self) -> str:
        return self.dispatcher.worker

    def materialise(self) -> int:
        """Nightly: roll every schedule's horizon forward."""
        return self.engine.materialise_all(self.clock.now())

    def plan_pass(self, now: datetime, *, digests: bool = True) -> tuple[int, int, GatherStats]:
        """Plan and gather what is due by now + lookahead (:meth:`Engine.plan_pass`), and let
        what outlived its relevance go."""
        started = time.perf_counter()
        planned, digested, gathered = self.engine.plan_pass(
            now, platforms=self.dispatcher.platforms, ahead=self.lookahead, digests=digests
        )
        with session_scope(self.db) as session:
            gathered.dead += expire(session, now)
        metrics.TICK_SECONDS.observe(time.perf_counter() - started)
        return planned, digested, gathered

    async def tick(self, *, drain: bool = True) -> TickResult:
        now = self.clock.now()
        planned, digests, gathered = await asyncio.to_thread(self.plan_pass, now)
        dispatch = await (self.dispatcher.drain() if drain else self.dispatcher.run_once())
        return TickResult(planned, digests, gathered, dispatch)

    def shutdown(self) -> int:
        released = self.dispatcher.release()
        log.info("worker %s released %d claimed deliveries", self.name, released)
        return released
