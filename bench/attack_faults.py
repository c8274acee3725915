"""Attack: the fake Bot API injects 429 (retry_after), 5xx, connection resets and read timeouts
after accepting, while the real dispatcher sends 600 messages to 30 chats.

Prints figures; it is not a test.  The dispatcher and TelegramAdapter (limits on: 30/s, 1/s per
chat) run in this process on a real clock shifted to a working morning, with short backoffs so a
run takes under a minute; the fake server runs in this process too (its answers are what is
counted).  Counted from the server's log: lost (never answered 200), duplicates (answered 200
more than once: expected only where a read timeout hit a message the server had accepted),
early retries (a send to a chat before that chat's retry_after had passed), per-chat order
violations (a message arriving before an earlier-planned one to the same chat), and timeout
resends as counted by the ``dutybot_timeout_resends_total`` metric.

    .venv/bin/python bench/attack_faults.py [--backends sqlite,postgresql] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select

from bench.burst import OffsetClock
from bench.dispatch import MARKER, NOW, PG_URL, Scenario, fill, table
from bot import metrics
from bot.adapters.telegram import TelegramAdapter
from bot.dispatch import Dispatcher, SendPolicy
from bot.store.db import open_store
from bot.store.models import Delivery
from tests.fakes.botapi import FakeBotApi, Fault
from tests.fakes.databases import scratch_database

MESSAGES, CHATS = 600, 30
READ_TIMEOUT = 1.0
RETRY_AFTER = 2


def faults_for(rng: random.Random, calls: int) -> list[Fault]:
    """A per-chat answer script: about a third of the calls answered with a fault."""
    choices = [
        Fault(),
        Fault(),
        Fault(),
        Fault(),
        Fault(),
        Fault(),
        Fault.retry_after(RETRY_AFTER),
        Fault.server_error(502),
        Fault.connection_reset(),
        Fault.slow(READ_TIMEOUT + 0.5),  # answered (sent) after the client gave up
    ]
    return [rng.choice(choices) for _ in range(calls)]


def timeout_resends() -> float:
    return sum(
        s.value
        for m in metrics.TIMEOUT_RESENDS.collect()
        for s in m.samples
        if s.name.endswith("_total")
    )


async def attack(url: str, api: FakeBotApi, seed: int) -> dict[str, Any]:
    db = open_store(url)
    expected = fill(db, Scenario("faults", MESSAGES, CHATS, limits=True))
    rng = random.Random(seed)
    for chat in sorted(set(expected.values())):
        api.inject("sendMessage", *faults_for(rng, 12), chat_id=chat)
    policy = SendPolicy(
        backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=4),
        probe_first=timedelta(seconds=1),
        probe_max=timedelta(seconds=2),
        lease=timedelta(seconds=60),
    )
    adapter = TelegramAdapter(api.token, base_url=api.base_url, read_timeout=READ_TIMEOUT)
    timeouts_before = timeout_resends()
    started = time.monotonic()
    async with adapter:
        dispatcher = Dispatcher(db, adapter, OffsetClock(NOW), worker="attack", policy=policy)
        while time.monotonic() - started < 240:
            stats = await dispatcher.run_once()
            with db.connect() as conn:
                left = conn.execute(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.state.in_(("pending", "claimed")))  # type: ignore[attr-defined]
                ).scalar_one()
            if not left:
                break
            if not stats.claimed:
                await asyncio.sleep(0.2)
    elapsed = time.monotonic() - started
    with db.connect() as conn:
        states = dict(
            conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all()  # type: ignore[arg-type]
        )
    db.dispose()
    return judge(api, expected, elapsed, states, timeout_resends() - timeouts_before)


def judge(
    api: FakeBotApi,
    expected: dict[str, str],
    elapsed: float,
    states: dict[str, int],
    timeouts: float,
) -> dict[str, Any]:
    calls = api.calls_to("sendMessage")
    arrived: Counter[str] = Counter()
    per_chat: dict[str, list[int]] = defaultdict(list)
    paused_until: dict[str, float] = {}
    early = accepted_late = 0
    for call in sorted(calls, key=lambda c: c.at):
        chat = call.chat_id or ""
        if call.at < paused_until.get(chat, 0.0):
            early += 1
        fault = call.fault
        if fault is not None and fault.status == 429:
            paused_until[chat] = call.at + RETRY_AFTER
        if call.status != 200:
            continue
        if fault is not None and fault.delay:
            accepted_late += 1
        for marker in MARKER.findall(str(call.params.get("text", ""))):
            if marker in expected:
                if not arrived[marker]:
                    per_chat[chat].append(int(marker.split("-")[1]))
                arrived[marker] += 1
    order = sum(1 for seq in per_chat.values() for a, b in pairwise(seq) if b < a)
    return {
        "seconds": round(elapsed, 1),
        "http calls": len(calls),
        "lost": sum(1 for m in expected if not arrived[m]),
        "duplicates": sum(arrived[m] - 1 for m in expected if arrived[m] > 1),
        "accepted after the timeout": accepted_late,
        "timeout resends (metric)": int(timeouts),
        "early retries": early,
        "order violations": order,
        "states": ",".join(f"{k}={v}" for k, v in sorted(states.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        results = []
        for run in range(args.runs):
            with FakeBotApi() as api, scratch_database(backend, args.pg_url) as url:
                result = asyncio.run(attack(url, api, seed=run))
            print(f"{backend} run {run + 1}: {result}", flush=True)
            results.append(result)
        row: dict[str, Any] = {"backend": backend}
        for key in results[0]:
            values = [r[key] for r in results]
            if isinstance(values[0], int | float):
                row[key] = f"{min(values)}/{statistics.median(values)}/{max(values)}"
            else:
                row[key] = " ; ".join(str(v) for v in values)
        rows.append(row)
    print("\n(min/median/max of", args.runs, "runs)")
    print(table(rows))


if __name__ == "__main__":
    main()
