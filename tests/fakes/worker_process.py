"""A dutybot worker in its own OS process, for crash and scale-out tests.

    python -m tests.fakes.worker_process --db URL --api BASE_URL --token T --now ISO
        [--lease SECONDS] [--name NAME] [--plan] [--rounds N] [--batch N]

It plans (with --plan: engine, digests, gathering into bundles) and sends against the given
database with a simulated clock fixed at --now, over real HTTP to the given Bot API, until
nothing is left; then prints one JSON line of counts.  The test process kills or races it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime, timedelta

from bot.adapters.telegram import TelegramAdapter
from bot.clock import SimulatedClock
from bot.dispatch import SendPolicy
from bot.store.db import open_store
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
    args = parser.parse_args()

    db = open_store(args.db)
    clock = SimulatedClock(datetime.fromisoformat(args.now))
    adapter = TelegramAdapter(args.token, base_url=args.api, read_timeout=5.0)
    adapter.limits = None
    policy = SendPolicy(lease=timedelta(seconds=args.lease), batch=args.batch)
    worker = Worker(db, adapter, clock, name=args.name, policy=policy)
    planned = sent = 0
    async with adapter:
        for _ in range(args.rounds):
            if args.plan:
                p, d, _ = await asyncio.to_thread(worker.plan_pass, clock.now())
                planned += p + d
            stats = await worker.dispatcher.run_once()
            sent += stats.sent
            print(json.dumps({"round_sent": stats.sent}), flush=True)
            if not stats.claimed:
                break
    print(json.dumps({"name": worker.name, "planned": planned, "sent": sent}), flush=True)
    db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
