"""Attack: three worker processes race over one PostgreSQL outbox of 20,000 messages.

Prints figures; it is not a test (tests/test_processes.py races two workers on a small outbox).
The outbox is filled as bench/dispatch.py does (admin alerts to 200 chats, each its own
message); then three `python -m tests.fakes.worker_process` processes (the real Dispatcher and
TelegramAdapter, limits off, a short lease so that re-claims happen) send until nothing is
left, against the fake Bot API in its own process.  Counted at the server and in the store:
lost (never arrived), duplicates (arrived more than once), double "sent" (a delivery with more
than one ``notification_sent`` audit event), and deliveries not in state ``sent``.

    .venv/bin/python bench/attack_workers.py [--rows 20000] [--workers 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from bench.dispatch import MARKER, NOW, PG_URL, FakeServer, Scenario, fill, table
from bot.store.db import open_store
from bot.store.models import AuditEvent, Delivery
from tests.fakes.databases import scratch_database


def race(url: str, server: FakeServer, rows: int, workers: int, lease: float) -> dict[str, Any]:
    db = open_store(url)
    expected = fill(db, Scenario("workers", rows, 200, limits=False))
    started = time.monotonic()
    # stderr to files, not pipes: a chatty worker never blocks while another is waited for
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(workers)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
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
                "--lease",
                str(lease),
                "--name",
                f"w{n}",
                "--batch",
                "200",
            ],
            stdout=subprocess.PIPE,
            stderr=logs[n],
            text=True,
        )
        for n in range(workers)
    ]
    sent_by = []
    for proc, log in zip(procs, logs, strict=True):
        out, _ = proc.communicate(timeout=1200)
        if proc.returncode:
            log.seek(0)
            print(f"a worker exited with {proc.returncode}:\n{log.read()[-2000:]}", file=sys.stderr)
            sent_by.append(0)
            continue
        last = json.loads(out.strip().splitlines()[-1])
        sent_by.append(last.get("sent", 0))
    elapsed = time.monotonic() - started
    with db.connect() as conn:
        states = dict(
            conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all()  # type: ignore[arg-type]
        )
        audits = Counter(
            detail["delivery"]
            for (detail,) in conn.execute(
                select(AuditEvent.detail).where(AuditEvent.action == "notification_sent")
            ).all()
        )
    db.dispose()
    arrived: Counter[str] = Counter()
    for _chat, body, status, _at in server.ask("sent"):
        if status == 200:
            arrived.update(m for m in MARKER.findall(body) if m in expected)
    return {
        "seconds": round(elapsed, 1),
        "msgs/s": round(rows / elapsed, 1),
        "sent by worker": "+".join(str(s) for s in sent_by),
        "lost": sum(1 for m in expected if not arrived[m]),
        "duplicates": sum(arrived[m] - 1 for m in expected if arrived[m] > 1),
        "double sent": sum(1 for n in audits.values() if n > 1),
        "not sent": sum(n for state, n in states.items() if state != "sent"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    server = FakeServer()
    results = []
    try:
        for n in range(args.runs):
            server.ask("clear")
            with scratch_database("postgresql", args.pg_url) as url:
                result = race(url, server, args.rows, args.workers, args.lease)
            print(f"run {n + 1}: {result}", flush=True)
            results.append(result)
    finally:
        server.close()
    row: dict[str, Any] = {"backend": "postgresql", "rows": args.rows, "workers": args.workers}
    for key in results[0]:
        values = [r[key] for r in results]
        if isinstance(values[0], int | float):
            row[key] = f"{min(values)}/{statistics.median(values)}/{max(values)}"
        else:
            row[key] = " ; ".join(values)
    print(f"\n(min/median/max of {args.runs})")
    print(table([row]))


if __name__ == "__main__":
    main()
