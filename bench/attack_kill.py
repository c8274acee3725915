"""Attack: a sending worker process killed with SIGKILL 20 times at random moments.

Prints figures; it is not a test (tests/test_processes.py kills once).  The outbox is filled
as bench/dispatch.py does (50,000 admin alerts to 200 chats); then `python -m
tests.fakes.worker_process` (the real Worker, Dispatcher and TelegramAdapter, limits off, on a
clock fixed at a working morning -- not `dutybot run`, whose system clock would put the
messages outside working hours at night) is started, killed with SIGKILL a
random 0-1.5 s after its first round of sends, and started again under the same worker name,
20 times; then it runs to the end.
Counted from the fake Bot API's log (its own process): lost, duplicates, the most duplicates
to one chat, and duplicates per kill (goal: at most the sends in flight, one per chat).

    .venv/bin/python bench/attack_kill.py [--backends sqlite,postgresql] [--kills 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from bench.dispatch import MARKER, NOW, PG_URL, FakeServer, Scenario, fill, table
from bot.store.db import open_store
from bot.store.models import Delivery
from tests.fakes.databases import scratch_database


def worker(url: str, server: FakeServer) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.worker_process",
            "--db",
            url,
            "--api",
            server.base_url,
            "--token",
            server.token,
            "--now",
            NOW.isoformat(),
            "--name",
            "victim",
            "--batch",
            "200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def attack(url: str, server: FakeServer, rows: int, kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    db = open_store(url)
    expected = fill(db, Scenario("kill", rows, 200, limits=False))
    started = time.monotonic()
    done_early = 0
    killed_at: list[float] = []  # time.monotonic(): one clock for every process of this host
    for _ in range(kills):
        proc = worker(url, server)
        assert proc.stdout is not None
        if not proc.stdout.readline():  # its first round is sent: now it is mid-batch
            done_early += 1
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            done_early += 1
        killed_at.append(time.monotonic())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = worker(url, server)
    out, _ = last.communicate(timeout=600)
    final = json.loads(out.strip().splitlines()[-1])
    elapsed = time.monotonic() - started
    with db.connect() as conn:
        states = dict(
            conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all()  # type: ignore[arg-type]
        )
        timed_out = conn.execute(
            select(func.count()).where(Delivery.timeouts > 0)  # type: ignore[arg-type]
        ).scalar_one()
    db.dispose()
    arrived: Counter[str] = Counter()
    dup_chat: Counter[str] = Counter()
    per_kill_chat: Counter[tuple[int, str]] = Counter()  # repeats one kill caused to one chat
    first: dict[str, tuple[float, float | None]] = {}  # marker: (arrived, answered) at the server
    lags: list[float] = []  # repeats: from the first answer leaving the server to the next kill
    waits: list[float] = []  # repeats: how long the server took to answer the first send
    for chat, body, status, at, answered in server.ask("answered"):
        if status != 200:
            continue
        for marker in MARKER.findall(body):
            if marker in expected:
                if arrived[marker]:
                    dup_chat[chat] += 1
                    first_at, first_answered = first[marker]
                    sent_at = first_answered if first_answered is not None else first_at
                    # the kill that ended the run which sent it first: the last one before
                    # the repeat (a send may reach the server a moment after the kill's
                    # timestamp was taken: it was in flight, lag below 0 counts as 0)
                    before = [k for k in killed_at if k <= at]
                    if before:
                        lags.append(max(before[-1] - sent_at, 0.0))
                        per_kill_chat[(len(before), chat)] += 1
                    if first_answered is not None:
                        waits.append(first_answered - first_at)
                else:
                    first[marker] = (at, answered)
                arrived[marker] += 1
    duplicates = sum(arrived[m] - 1 for m in expected if arrived[m] > 1)
    return {
        "seconds": round(elapsed, 1),
        "kills": kills - done_early,
        "lost": sum(1 for m in expected if not arrived[m]),
        "duplicates": duplicates,
        "most duplicates to one chat": max(dup_chat.values(), default=0),
        "most repeats to one chat from one kill": max(per_kill_chat.values(), default=0),
        "duplicates per kill": round(duplicates / max(kills - done_early, 1), 2),
        # a repeat whose first answer left the server long before its kill was recorded too
        # late; one answered in the last moments before the kill was in flight (its outcome not
        # yet written).  The answer's time is taken when the server wrote it, so a slow server
        # (the send still in flight at the client) is told apart from slow recording.
        "max ms answered before the kill": round(max(lags, default=0.0) * 1000),
        "repeats answered over 1 s before the kill": sum(1 for lag in lags if lag > 1.0),
        "max ms the server took to answer a repeat's first send": round(
            max(waits, default=0.0) * 1000
        ),
        # a send whose answer did not come within the client's read timeout is sent again
        # (the ambiguous timeout, allowed); the store counts them per delivery
        "deliveries that timed out": int(timed_out),
        "sent by the last run": final.get("sent", 0),
        "not sent": sum(n for state, n in states.items() if state != "sent"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rows", type=int, default=50_000, help="so 20 kills land mid-work")
    parser.add_argument("--kills", type=int, default=20)
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
                    result = attack(url, server, args.rows, args.kills, seed=n)
                print(f"{backend} run {n + 1}: {result}", flush=True)
                results.append(result)
            row: dict[str, Any] = {"backend": backend}
            for key in results[0]:
                values = [r[key] for r in results]
                row[key] = f"{min(values)}/{statistics.median(values)}/{max(values)}"
            rows.append(row)
    finally:
        server.close()
    print(f"\n(min/median/max of {args.runs})")
    print(table(rows))


if __name__ == "__main__":
    main()
