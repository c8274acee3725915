"""The naive design most reminder bots use, to measure dutybot against on the same data.

One APScheduler 3 job per reminder (and per escalation step), in a SQLAlchemy job store, with
a DateTrigger at its instant; the job sends one message over HTTP.  No outbox, no bundling,
no pacing beyond what the executor's thread/coroutine pool happens to allow.  On a restart
APScheduler runs every job that misfired within its grace time -- one message per missed
step.  Small on purpose: it is the baseline, not a product.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

_CLIENT: httpx.AsyncClient | None = None
_SENT: list[float] = []  # time.monotonic() of each answered send


async def send_job(base_url: str, chat_id: str, text: str) -> None:
    """The job: one sendMessage (module level, so the SQL job store can pickle a reference)."""
    assert _CLIENT is not None
    response = await _CLIENT.post(
        f"{base_url}/sendMessage", json={"chat_id": chat_id, "text": text}
    )
    response.raise_for_status()
    _SENT.append(time.monotonic())


@dataclass(frozen=True)
class Job:
    id: str
    at: datetime
    chat_id: str
    text: str


@dataclass
class NaiveBot:
    url: str  # the job store's database
    base_url: str  # the Bot API, with the token: https://…/bot<token>
    misfire_grace: int = 30 * 86400  # "never lose a reminder": run what was missed
    scheduler: AsyncIOScheduler = field(init=False)

    def __post_init__(self) -> None:
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.url)},
            executors={"default": AsyncIOExecutor()},
            job_defaults={"coalesce": False, "misfire_grace_time": self.misfire_grace},
        )

    async def add(self, jobs: Iterable[Job]) -> float:
        """Schedule jobs (paused scheduler: written to the store); returns seconds spent."""
        started = time.perf_counter()
        self.scheduler.start(paused=True)
        for job in jobs:
            self.scheduler.add_job(
                send_job,
                DateTrigger(run_date=job.at),
                args=[self.base_url, job.chat_id, job.text],
                id=job.id,
                replace_existing=True,
            )
        self.scheduler.shutdown(wait=False)
        return time.perf_counter() - started

    async def run(self, *, expect: int, timeout: float) -> list[float]:
        """Start the scheduler and wait until ``expect`` sends were answered (or timeout);
        returns the monotonic instants of the sends."""
        global _CLIENT
        _SENT.clear()
        _CLIENT = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100))
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.url)},
            executors={"default": AsyncIOExecutor()},
            job_defaults={"coalesce": False, "misfire_grace_time": self.misfire_grace},
        )
        self.scheduler.start()
        deadline = time.monotonic() + timeout
        while len(_SENT) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.scheduler.shutdown(wait=False)
        await _CLIENT.aclose()
        return list(_SENT)
