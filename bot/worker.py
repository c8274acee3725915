"""One worker: the engine (plan) and the dispatcher (send) sharing a clock.

``tick`` is what APScheduler calls every few seconds and what the demo and the tests
call directly under a simulated clock.  All business state is in the database, so any
number of workers may tick against one PostgreSQL database.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine as DbEngine

from bot.adapters.base import ChatAdapter
from bot.clock import Clock
from bot.engine import Engine
from bot.outbox import Address, Dispatcher, DispatchStats, bound_chat

log = logging.getLogger("dutybot.worker")


@dataclass
class TickResult:
    planned: int
    digests: int
    dispatch: DispatchStats


class Worker:
    def __init__(
        self,
        db: DbEngine,
        adapter: ChatAdapter,
        clock: Clock,
        *,
        lang: str = "zh-CN",
        horizon_days: int = 62,
        address: Address = bound_chat,
        lease: timedelta = timedelta(minutes=2),
        name: str | None = None,
    ) -> None:
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.engine = Engine(db, horizon_days=horizon_days)
        self.dispatcher = Dispatcher(
            db, adapter, clock, worker=self.name, address=address, lang=lang, lease=lease
        )

    def materialise(self) -> int:
        """Nightly: roll every schedule's horizon forward."""
        return self.engine.materialise_all(self.clock.now())

    async def tick(self, *, drain: bool = True) -> TickResult:
        now = self.clock.now()
        planned = self.engine.plan(now)
        digests = self.engine.plan_digests(now)
        dispatch = await (self.dispatcher.drain() if drain else self.dispatcher.run_once())
        return TickResult(planned, digests, dispatch)

    def shutdown(self) -> int:
        released = self.dispatcher.release()
        log.info("worker %s released %d claimed notifications", self.name, released)
        return released
