"""Import + plan ~100k occurrences (1,800 daily/workday tasks), on SQLite and PostgreSQL.

Issue 13, row 1.  A generated schedule file (``schedule_text``) is loaded and validated, then
imported into an empty store; each run is a fresh child process, so its peak RSS is its own.
Load + validate (the YAML loader, another branch's work) and the store part (this one's) are
timed apart.  The naive design's figure adds one APScheduler job per occurrence to a
SQLAlchemy job store (``bench/naive.py``) on the same backend.  Prints min / median of 3.

    .venv/bin/python bench/import_plan.py [--tasks 1800] [--runs 3] [--naive-jobs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.databases import PG_URL, scratch_database  # noqa: E402

NOW = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)  # Mon 09:00 Asia/Shanghai
HORIZON = 62
PEOPLE = [f"人员{i:03d}" for i in range(60)]
UNITS = [f"单位{i:02d}" for i in range(20)]


def schedule_text(tasks: int, deadlines: int = 0, *, moved: int = 0) -> str:
    """A schedule of ``tasks`` daily/workday tasks and ``deadlines`` deadline tasks, the first
    ``moved`` of which fall a week later than in the unmoved file."""
    lines = [
        "schedule: bench-import",
        "title: 导入测速清单",
        "issued_on: 2024-06-01",
        "people:",
        *(
            f"  {p}: {{title: 科长{', chief: true' if i == 0 else ''}}}"
            for i, p in enumerate(PEOPLE)
        ),
        "units:",
        *(f"  {u}: {{contacts: [{PEOPLE[i % len(PEOPLE)]}]}}" for i, u in enumerate(UNITS)),
        f"admins: [{PEOPLE[1]}]",
        "tasks:",
    ]
    for t in range(tasks):
        every = "day" if t % 2 == 0 else "workday"
        lead, resp, unit = PEOPLE[t % 60], PEOPLE[(t * 7 + 1) % 60], UNITS[t % 20]
        lines.append(
            f'  - {{ref: "1.{t + 1}", title: 每日巡查第{t}项, lead: [{lead}], '
            f"responsible: [{resp}], units: [{unit}], every: {every}}}"
        )
    base = date(2024, 6, 20)
    for d in range(deadlines):
        due = base + timedelta(days=d % 40 + (7 if d < moved else 0))
        lead, unit = PEOPLE[d % 60], UNITS[d % 20]
        lines.append(
            f'  - {{ref: "2.{d + 1}", title: 限期整改第{d}项, lead: [{lead}], units: [{unit}], '
            f"due: {due.isoformat()}}}"
        )
    return "\n".join(lines) + "\n"


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(path: Path) -> tuple[Any, float]:
    from bot.schedule.validate import load_schedule

    started = time.perf_counter()
    loaded = load_schedule(path)
    took = time.perf_counter() - started
    assert loaded.ok and loaded.spec is not None, [str(p) for p in loaded.problems[:5]]
    return loaded.spec, took


def timed_import(url: str, spec: Any, now: datetime = NOW) -> tuple[float, Any]:
    from bot.schedule.importer import import_schedule
    from bot.store.db import open_store, session_scope

    engine = open_store(url)
    started = time.perf_counter()
    with session_scope(engine) as session:
        diff = import_schedule(session, spec, now=now, horizon_days=HORIZON)
    took = time.perf_counter() - started
    engine.dispose()
    return took, diff


def count_occurrences(url: str) -> int:
    from sqlalchemy import text

    from bot.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text("select count(*) from occurrence")).scalar_one())
    engine.dispose()
    return n


def child_import(url: str, file: str) -> dict[str, Any]:
    spec, load_s = load(Path(file))
    store_s, diff = timed_import(url, spec)
    return {
        "load_s": load_s,
        "store_s": store_s,
        "total_s": load_s + store_s,
        "occurrences": count_occurrences(url),
        "added": diff.occurrences.added,
        "rss_mib": peak_rss_mib(),
    }


def naive_jobs(file: str, limit: int) -> list[Any]:
    """The reminders the naive design would schedule: one job per occurrence, at its due
    instant (the same plan as dutybot's, so the data is the same)."""
    from zoneinfo import ZoneInfo

    from bench.naive import Job
    from bot.calendar import WorkCalendar, WorkingHours
    from bot.occurrences import ScheduleTime, Timing, plan

    spec, _ = load(Path(file))
    st = ScheduleTime(
        WorkCalendar("cn"), WorkingHours.parse(spec.working_hours), ZoneInfo(spec.timezone)
    )
    today = st.local_date(NOW)
    jobs = []
    for task in spec.tasks:
        timing = Timing(
            task.kind, task.start or spec.issued_on, task.due_date, task.every, task.times
        )
        for p in plan(timing, st.calendar, today, today + timedelta(days=HORIZON)):
            jobs.append(
                Job(
                    f"{task.ref}:{p.period_start}",
                    st.due_at(p.due_date),
                    task.lead[0] if task.lead else "x",
                    f"{task.title} {p.due_date}",
                )
            )
            if len(jobs) >= limit:
                return jobs
    return jobs


def child_naive(url: str, file: str, limit: int) -> dict[str, Any]:
    import asyncio

    from bench.naive import NaiveBot

    jobs = naive_jobs(file, limit)
    bot = NaiveBot(url=url, base_url="http://127.0.0.1:9/bot0")
    took = asyncio.run(bot.add(jobs))
    return {"jobs": len(jobs), "total_s": took, "rss_mib": peak_rss_mib()}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "import": child_import,
    "naive": child_naive,
}


def in_child(kind: str, *args: Any, script: str = __file__) -> dict[str, Any]:
    """One measurement in a fresh interpreter: its time and its own peak RSS."""
    out = subprocess.run(
        [sys.executable, script, "--child", kind, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p
            ),
        },
    )
    if out.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def min_med(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"


def uptime() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def backend_url(backend: str, stack: Any, pg_url: str) -> str:
    return stack.enter_context(scratch_database(backend, pg_url))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1800)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--naive-jobs",
        type=int,
        default=10000,
        help="jobs the naive design adds (0: skip); figure scaled to 100k",
    )
    parser.add_argument("--pg-url", default=os.environ.get("DUTYBOT_TEST_PG_URL", PG_URL))
    args = parser.parse_args(argv)
    import contextlib

    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        file = Path(folder) / "big.yaml"
        file.write_text(schedule_text(args.tasks), encoding="utf-8")
        print(f"load average before: {uptime()}", flush=True)
        rows = []
        for backend in args.backends.split(","):
            runs, naive = [], []
            for _ in range(args.runs):
                with contextlib.ExitStack() as stack:
                    runs.append(in_child("import", backend_url(backend, stack, args.pg_url), file))
                print(f"{backend} import: {runs[-1]}", flush=True)
            if args.naive_jobs:
                for _ in range(args.runs):
                    with contextlib.ExitStack() as stack:
                        url = backend_url(backend, stack, args.pg_url)
                        naive.append(in_child("naive", url, file, args.naive_jobs))
                    print(f"{backend} naive: {naive[-1]}", flush=True)
            n = runs[0]["occurrences"]
            row = {
                "backend": backend,
                "tasks": args.tasks,
                "occurrences": f"{n:,}",
                "load+validate s": min_med([r["load_s"] for r in runs]),
                "import+plan s (store)": min_med([r["store_s"] for r in runs]),
                "total s": min_med([r["total_s"] for r in runs]),
                "peak RSS MiB": min_med([r["rss_mib"] for r in runs], "{:.0f}"),
            }
            if naive:
                scale = n / naive[0]["jobs"]
                row["naive: add jobs s"] = (
                    f"{min_med([r['total_s'] for r in naive])} for {naive[0]['jobs']:,} "
                    f"(≈ {min(r['total_s'] for r in naive) * scale:.0f} for {n:,})"
                )
                row["naive RSS MiB"] = min_med([r["rss_mib"] for r in naive], "{:.0f}")
            rows.append(row)
        print(f"load average after: {uptime()}")
        print_table(rows)


def print_table(rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        fn = CHILDREN[kind]
        extra = [int(x) if x.isdigit() else x for x in rest]
        print(json.dumps(fn(*extra)))
    else:
        main()
