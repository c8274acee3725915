"""A burst: 1,000 reminders due at one instant (08:30), each to its own official.

Prints figures; it is not a test.  dutybot runs as `dutybot run` does (Runtime: APScheduler
waking the planner, the sender sleeping until the next instant) on a clock that runs at real
speed but starts at 08:29:50 business time, against the fake Bot API in its own process.
Measured from the fake server's arrival times: the first send's delay after the instant, the
send rate, and the busiest second (never above the 30/s limit with limits on).  The naive
design (bench/naive.py: one APScheduler job per reminder in a SQL job store) runs on the
same data for comparison.

    .venv/bin/python bench/burst.py [--backends sqlite,postgresql] [--n 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bench.dispatch import FakeServer, most_in_any_second, table
from bench.naive import Job, NaiveBot
from bot.adapters.telegram import TelegramAdapter
from bot.identities import bind
from bot.runtime import JobPolicy, Runtime
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.store.models import Person
from bot.worker import Worker
from tests.fakes.databases import PG_URL, scratch_database

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 6, 12)  # a Wednesday
INSTANT = datetime(2024, 6, 12, 8, 30, tzinfo=TZ)
LEAD = timedelta(seconds=10)  # the process starts this long before the instant


class OffsetClock:
    """Real time, shifted so that business time starts where the scenario needs it."""

    def __init__(self, start: datetime) -> None:
        self.offset = start.astimezone(UTC) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        seconds = (instant - self.now()).total_seconds()
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=seconds)


def schedule_yaml(n: int) -> str:
    people = "".join(f"  官员{i:04d}: {{}}\n" for i in range(n))
    tasks = "".join(
        f'  - {{ref: "{i + 1}", title: 工作{i + 1}, responsible: [官员{i:04d}], due: {DAY}}}\n'
        for i in range(n)
    )
    return (
        f"schedule: burst\ntitle: 测试清单\nissued_on: 2024-06-01\npeople:\n{people}"
        f"policy:\n  remind: [0]\n  digest: {{to: [admins]}}\ntasks:\n{tasks}"
    )


def build(url: str, n: int) -> None:
    spec = load_schedule("burst.yaml", text=schedule_yaml(n)).spec
    assert spec is not None
    db = open_store(url)
    with session_scope(db) as session:
        import_schedule(session, spec, now=INSTANT - timedelta(days=1), horizon_days=30)
        for person in session.exec(select(Person)).all():
            bind(
                session,
                person=person,
                platform="telegram",
                chat_id=str(100_000 + (person.id or 0)),
                now=INSTANT - timedelta(days=1),
            )
    db.dispose()


async def run_dutybot(url: str, server: FakeServer, limits: bool, n: int) -> dict[str, float]:
    db = open_store(url)
    clock = OffsetClock(INSTANT - LEAD)
    adapter = TelegramAdapter(server.token, base_url=server.base_url)
    if not limits:
        adapter.limits = None
    worker = Worker(db, adapter, clock)  # type: ignore[arg-type]
    runtime = Runtime(worker, JobPolicy(tick_seconds=5))
    # from the clock itself: building the worker takes a while on a loaded host, and an
    # instant computed after it made sends at 08:30:00 look early
    instant_mono = time.monotonic() + (INSTANT - clock.now()).total_seconds()
    async with adapter:
        await runtime.start()
        while True:
            calls = server.ask("sent")
            if sum(1 for c in calls if c[2] == 200) >= n or time.monotonic() > instant_mono + 120:
                break
            await asyncio.sleep(0.25)
        await runtime.stop()
    db.dispose()
    stamps = sorted(c[3] for c in calls if c[2] == 200)
    return summary(stamps, instant_mono)


def summary(stamps: list[float], instant: float) -> dict[str, float]:
    if not stamps:
        return {"sent": 0}
    early = sum(1 for s in stamps if s < instant)
    span = stamps[-1] - stamps[0]
    return {
        "sent": len(stamps),
        "early": early,
        "first ms": round((stamps[0] - instant) * 1000, 1),
        "last s": round(stamps[-1] - instant, 2),
        "msgs/s": round((len(stamps) - 1) / span, 1) if span else 0,
        "busiest second": most_in_any_second(stamps),
    }


async def run_naive(url: str, server: FakeServer, n: int) -> dict[str, float]:
    bot = NaiveBot(url, f"{server.base_url}{server.token}")
    at = datetime.now(UTC) + LEAD
    await bot.add(Job(f"r{i}", at, str(100_000 + i), f"提醒：工作{i + 1}") for i in range(n))
    instant_mono = time.monotonic() + (at - datetime.now(UTC)).total_seconds()
    await bot.run(expect=n, timeout=120)
    calls = server.ask("sent")
    return summary(sorted(c[3] for c in calls if c[2] == 200), instant_mono)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    server = FakeServer()
    rows = []
    try:
        for backend in args.backends.split(","):
            for design in ("dutybot limits on", "dutybot limits off", "naive"):
                results = []
                for _ in range(args.runs):
                    server.ask("clear")
                    with scratch_database(backend, args.pg_url) as url:
                        if design == "naive":
                            result = asyncio.run(run_naive(url, server, args.n))
                        else:
                            build(url, args.n)
                            result = asyncio.run(
                                run_dutybot(url, server, design.endswith("on"), args.n)
                            )
                    results.append(result)
                    print(f"{backend} {design}: {result}", flush=True)
                first = [r["first ms"] for r in results if "first ms" in r]
                rate = [r["msgs/s"] for r in results if "msgs/s" in r]
                rows.append(
                    {
                        "backend": backend,
                        "design": design,
                        "first send ms after the instant (min/median)": (
                            f"{min(first)}/{statistics.median(first)}" if first else "-"
                        ),
                        "msgs/s (min/median)": f"{min(rate)}/{statistics.median(rate)}"
                        if rate
                        else "-",
                        "busiest second (max)": max(r.get("busiest second", 0) for r in results),
                        "sent early": sum(r.get("early", 0) for r in results),
                        "sent": [r.get("sent", 0) for r in results],
                    }
                )
    finally:
        server.close()
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
