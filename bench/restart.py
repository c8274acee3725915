"""Restart after a long outage: 10,000 overdue occurrences, then `dutybot run`'s runtime starts.

Prints figures; it is not a test (the behaviour -- one summary per person after downtime -- is
pinned by tests/test_delivery_model.py and tests/test_escalation.py under a simulated clock).
A list of 10,000 tasks for 100 officials (one lead, one chief) is imported three weeks before
the runtime starts; every task fell due on 2024-05-20 and nobody answered, so each occurrence
missed its reminders and several escalation steps.  The real Runtime (APScheduler planning, the
sender, the real TelegramAdapter with its limits on) then starts on a real clock shifted to
Wed 2024-06-12 10:00 and runs against the fake Bot API (its own process) until nothing new has
arrived for 5 s.  Measured at the server: messages sent, the most to one chat, and the first
send's delay after the runtime started.  The naive design sends one message per missed step:
its figure is the number of ladder steps whose instant passed during the outage, counted from
the store after planning.

    .venv/bin/python bench/restart.py [--backends sqlite,postgresql] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bench.burst import OffsetClock
from bench.dispatch import PG_URL, FakeServer, table
from bot.adapters.telegram import TelegramAdapter
from bot.identities import bind
from bot.runtime import JobPolicy, Runtime
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.store.models import Notification, Person
from bot.worker import Worker
from tests.fakes.databases import scratch_database

TZ = ZoneInfo("Asia/Shanghai")
DUE = date(2024, 5, 20)
IMPORTED = datetime(2024, 5, 10, 9, 0, tzinfo=TZ)
START = datetime(2024, 6, 12, 10, 0, tzinfo=TZ)
OFFICIALS = 100
QUIET = 5.0  # seconds without a new arrival: done


def schedule_yaml(tasks: int) -> str:
    people = "  书记: {chief: true}\n  主任: {reports_to: 书记}\n" + "".join(
        f"  官员{i:03d}: {{reports_to: 主任}}\n" for i in range(OFFICIALS)
    )
    rows = "".join(
        f'  - {{ref: "{i + 1}", title: 工作{i + 1}, lead: [主任], '
        f"responsible: [官员{i % OFFICIALS:03d}], due: {DUE}}}\n"
        for i in range(tasks)
    )
    return (
        f"schedule: restart\ntitle: 测试清单\nissued_on: 2024-05-01\nadmins: [主任]\n"
        f"people:\n{people}"
        "policy:\n  remind: [-3, -1, 0]\n  escalate:\n"
        "    - {after: 1, to: [responsible]}\n    - {after: 3, to: [lead]}\n"
        "    - {after: 5, to: [chief], repeat: 5}\n"
        f"tasks:\n{rows}"
    )


def build(url: str, tasks: int) -> None:
    spec = load_schedule("restart.yaml", text=schedule_yaml(tasks)).spec
    assert spec is not None
    db = open_store(url)
    with session_scope(db) as session:
        import_schedule(session, spec, now=IMPORTED, horizon_days=62)
        for person in session.exec(select(Person)).scalars().all():  # type: ignore[attr-defined]
            bind(
                session,
                person=person,
                platform="telegram",
                chat_id=str(100_000 + (person.id or 0)),
                now=IMPORTED,
            )
    db.dispose()


async def run(url: str, server: FakeServer) -> dict[str, Any]:
    db = open_store(url)
    adapter = TelegramAdapter(server.token, base_url=server.base_url)
    worker = Worker(db, adapter, OffsetClock(START))  # type: ignore[arg-type]
    runtime = Runtime(worker, JobPolicy(tick_seconds=5))
    started = time.monotonic()
    async with adapter:
        await runtime.start()
        last, count = started, 0
        while time.monotonic() - started < 300:
            await asyncio.sleep(0.5)
            calls = [c for c in server.ask("sent") if c[2] == 200]
            if len(calls) != count:
                count, last = len(calls), time.monotonic()
            elif count and time.monotonic() - last > QUIET:
                break
        await runtime.stop()
    with db.connect() as conn:
        missed = conn.execute(
            select(func.count()).select_from(Notification)  # type: ignore[arg-type]
        ).scalar_one()
    db.dispose()
    stamps = sorted(c[3] for c in calls)
    per_chat = Counter(c[0] for c in calls)
    return {
        "messages": len(calls),
        "most to one chat": max(per_chat.values()) if per_chat else 0,
        "first send s after start": round(stamps[0] - started, 2) if stamps else None,
        "last send s": round(stamps[-1] - started, 1) if stamps else None,
        "notifications planned (steps caught up)": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    server = FakeServer()
    rows = []
    try:
        for backend in args.backends.split(","):
            results = []
            for n in range(args.runs):
                server.ask("clear")
                with scratch_database(backend, args.pg_url) as url:
                    build(url, args.tasks)
                    result = asyncio.run(run(url, server))
                print(f"{backend} run {n + 1}: {result}", flush=True)
                results.append(result)
            row: dict[str, Any] = {"backend": backend, "occurrences": args.tasks}
            for key in results[0]:
                values = [r[key] for r in results if r[key] is not None]
                row[key] = f"{min(values)}/{statistics.median(values)}" if values else "-"
            rows.append(row)
    finally:
        server.close()
    print(f"\n(min/median of {args.runs})")
    print(table(rows))


if __name__ == "__main__":
    main()
