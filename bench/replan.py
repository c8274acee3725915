"""Re-plan 1,000 moved deadlines (issue 13, row 3), on SQLite and PostgreSQL.

A store holds the row-1 schedule (1,800 daily/workday tasks, ~96k occurrences) plus 1,000
deadline tasks; the same file with every deadline a week later is re-imported.  Timed in a
fresh child each run: the store part of the re-import (load + validate printed apart) and
``materialise`` inside it (the re-plan alone).  Naive: ``reschedule_job`` for 1,000 jobs in
a SQLAlchemy job store.  Prints min / median of 3.

    .venv/bin/python bench/replan.py [--runs 3] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import import_plan as ip

MOVED = 1000


def child_replan(url: str, base: str, moved: str) -> dict[str, Any]:
    import bot.schedule.importer as importer

    spec, _ = ip.load(Path(base))
    ip.timed_import(url, spec)
    spec2, load_s = ip.load(Path(moved))
    spent: list[float] = []
    real = importer.materialise

    def timed(*args: Any, **kwargs: Any) -> Any:  # a bench may wrap; tests may not
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    importer.materialise = timed  # type: ignore[assignment]
    store_s, diff = ip.timed_import(url, spec2, ip.NOW + timedelta(hours=1))
    return {
        "load_s": load_s,
        "store_s": store_s,
        "replan_s": spent[0],
        "updated": diff.occurrences.updated,
        "rss_mib": ip.peak_rss_mib(),
    }


def child_naive(url: str, n: int) -> dict[str, Any]:
    import asyncio

    from apscheduler.triggers.date import DateTrigger

    from bench.naive import Job, NaiveBot

    bot = NaiveBot(url=url, base_url="http://127.0.0.1:9/bot0")
    jobs = [Job(f"D{i}", ip.NOW + timedelta(days=20 + i % 40), "x", f"整改{i}") for i in range(n)]
    asyncio.run(bot.add(jobs))

    async def reschedule() -> float:
        bot.scheduler.start(paused=True)
        started = time.perf_counter()
        for job in jobs:
            bot.scheduler.reschedule_job(
                job.id, trigger=DateTrigger(run_date=job.at + timedelta(7))
            )
        took = time.perf_counter() - started
        bot.scheduler.shutdown(wait=False)
        return took

    took = asyncio.run(reschedule())
    return {"total_s": took, "rss_mib": ip.peak_rss_mib()}


ip.CHILDREN.update({"replan": child_replan, "naive_replan": child_naive})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1800)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("DUTYBOT_TEST_PG_URL", ip.PG_URL))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replan-") as folder:
        base, moved = Path(folder) / "base.yaml", Path(folder) / "moved.yaml"
        base.write_text(ip.schedule_text(args.tasks, MOVED), encoding="utf-8")
        moved.write_text(ip.schedule_text(args.tasks, MOVED, moved=MOVED), encoding="utf-8")
        print(f"load average before: {ip.uptime()}", flush=True)
        rows = []
        for backend in args.backends.split(","):
            runs, naive = [], []
            for _ in range(args.runs):
                with contextlib.ExitStack() as stack:
                    url = ip.backend_url(backend, stack, args.pg_url)
                    runs.append(ip.in_child("replan", url, base, moved, script=__file__))
                print(f"{backend} replan: {runs[-1]}", flush=True)
                with contextlib.ExitStack() as stack:
                    url = ip.backend_url(backend, stack, args.pg_url)
                    naive.append(ip.in_child("naive_replan", url, MOVED, script=__file__))
                print(f"{backend} naive: {naive[-1]}", flush=True)
            rows.append(
                {
                    "backend": backend,
                    "moved deadlines": MOVED,
                    "updated": runs[0]["updated"],
                    "load+validate s": ip.min_med([r["load_s"] for r in runs]),
                    "re-import (store) s": ip.min_med([r["store_s"] for r in runs]),
                    "re-plan alone s": ip.min_med([r["replan_s"] for r in runs], "{:.3f}"),
                    "naive reschedule s": ip.min_med([r["total_s"] for r in naive]),
                    "peak RSS MiB": ip.min_med([r["rss_mib"] for r in runs], "{:.0f}"),
                }
            )
        print(f"load average after: {ip.uptime()}")
        ip.print_table(rows)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        extra = [int(x) if x.isdigit() else x for x in rest]
        print(json.dumps(ip.CHILDREN[kind](*extra)))
    else:
        main()
