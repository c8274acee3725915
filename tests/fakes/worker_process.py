"""A dutybot worker in its own OS process, for crash and scale-out tests.

    python -m tests.fakes.worker_process --db URL --api BASE_URL --token T --now ISO
        [--lease SECONDS] [--name NAME] [--plan] [--rounds N] [--batch N]

It plans (with --plan: engine, digests, gathering into bundles) and sends against the given
database with a simulated clock fixed at --now, over real HTTP to the given Bot API, until
nothing is left; then prints one JSON line of counts.  The test process kills or races it.
The clock starts at --now and follows the wall clock, so that the leases of a worker that died
expire and its rows are taken over: a worker stops only when no row is pending or claimed by
anyone (or after --linger seconds of finding nothing it may claim).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import col

from bot.adapters.telegram import TelegramAdapter
from bot.clock import SimulatedClock
from bot.dispatch import SendPolicy
from bot.logs import _FIELDS, JsonFormatter
from bot.outbox import CLAIMED, PENDING
from bot.store.db import open_store
from bot.store.models import Delivery
from bot.worker import Worker


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--linger", type=float, default=None, help="default: 3 leases")
    args = parser.parse_args()
    if os.environ.get("DUTYBOT_LOG_LEVEL"):  # for a bench that reads what the worker did
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter([]))
        handler.addFilter(_monotonic)
        logging.basicConfig(level=os.environ["DUTYBOT_LOG_LEVEL"].upper(), handlers=[handler])
    linger = args.linger if args.linger is not None else 3 * args.lease

    db = open_store(args.db)
    start = datetime.fromisoformat(args.now)
    clock = SimulatedClock(start)
    began = time.monotonic()
    adapter = TelegramAdapter(args.token, base_url=args.api, read_timeout=5.0)
    adapter.limits = None
    policy = SendPolicy(lease=timedelta(seconds=args.lease), batch=args.batch)
    worker = Worker(db, adapter, clock, name=args.name, policy=policy)
    planned = sent = 0

    async def heartbeat() -> None:
        """As the runtime's heartbeat job does: renew the leases of what is in flight."""
        dispatcher = worker.dispatcher
        while True:
            await asyncio.sleep(max(args.lease / 3, 0.5))
            clock.set(start + timedelta(seconds=time.monotonic() - began))
            await asyncio.to_thread(dispatcher.heartbeat, dispatcher.in_flight())

    async with adapter:
        beating = asyncio.create_task(heartbeat())
        idle_since: float | None = None
        for _ in range(args.rounds):
            clock.set(start + timedelta(seconds=time.monotonic() - began))
            if args.plan:
                p, d, _ = await asyncio.to_thread(worker.plan_pass, clock.now())
                planned += p + d
            stats = await worker.dispatcher.run_once()
            sent += stats.sent
            print(json.dumps({"round_sent": stats.sent}), flush=True)
            if stats.claimed:
                idle_since = None
                continue
            if not _unfinished(db, clock.now()):
                break
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > linger:
                break
            await asyncio.sleep(0.2)  # rows claimed by another worker: wait for it, or its lease
        beating.cancel()
    print(json.dumps({"name": worker.name, "planned": planned, "sent": sent}), flush=True)
    db.dispose()


def _monotonic(record: logging.LogRecord) -> bool:
    """Stamp log lines with time.monotonic(): one clock for every process of the host."""
    setattr(record, _FIELDS, {**getattr(record, _FIELDS, {}), "mono": time.monotonic()})
    return True


def _unfinished(db: Engine, now: datetime) -> int:
    """Deliveries due and pending, or claimed by anyone (a live worker's, or a dead one's)."""
    state, not_before = col(Delivery.state), col(Delivery.not_before)
    with db.connect() as conn:
        return conn.execute(
            select(func.count()).where(
                or_(state == CLAIMED, and_(state == PENDING, not_before <= now))
            )
        ).scalar_one()


if __name__ == "__main__":
    asyncio.run(main())
