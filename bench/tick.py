"""How long one engine tick (Engine.plan) takes, and how much memory it needs, at scale.

Prints figures; it is not a test.  For each backend and size it builds a store holding
one real schedule (schedules/fengdu-ndrc-2022.yaml: its people, units and policy), its
tasks cloned so that N open occurrences spread over them, a fraction of which (1% by
default) is due at the measured ``now``; the rest wait in the future.  Rows are written
with bulk inserts (COPY on PostgreSQL) so 1M rows build in minutes, not hours.

Measured, each in a fresh child process so ``ru_maxrss`` belongs to the tick alone:

- idle tick: ``plan(now)`` when nothing is due, repeated; thanks to the partial index on
  ``next_action_at`` it should cost the same at 10k and at 1M rows;
- due tick: ``plan(now)`` over every due row: wall time, rows/s, outbox rows written,
  maxrss; then the same rows are reset and planned again under tracemalloc (Python peak).

    .venv/bin/python bench/tick.py                       # all sizes, both backends
    .venv/bin/python bench/tick.py --sizes 10000 --backends sqlite --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import math
import os
import pstats
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine as DbEngine
from sqlalchemy import bindparam, delete, func, insert, select, text, update

from bench.dispatch import table
from bot.engine import Engine
from bot.identities import bind
from bot.materialise import schedule_time
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import checkpoint, make_engine, open_store, session_scope
from bot.store.models import (
    AuditEvent,
    Bundle,
    Delivery,
    Notification,
    Occurrence,
    Person,
    Schedule,
    Task,
    TaskMember,
)
from tests.fakes.databases import scratch_database

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "schedules" / "fengdu-ndrc-2022.yaml"
TZ = ZoneInfo("Asia/Shanghai")
# a Wednesday, a working day, inside working hours (08:30-18:00)
NOW = datetime(2024, 6, 12, 10, 0, tzinfo=TZ).astimezone(UTC)
IDLE_NOW = NOW - timedelta(days=3)  # before the earliest due row: nothing to plan
PERIOD_BASE = date(2000, 1, 1)  # period_start = base + k days keeps (task, period) unique
PG_URL = os.environ.get("DUTYBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHUNK = 50_000
OCC_COLUMNS = (
    "id",
    "task_id",
    "schedule_id",
    "kind",
    "period_start",
    "period_end",
    "due_date",
    "due_at",
    "times_required",
    "times_done",
    "status",
    "created_at",
    "next_action_at",
    "planned_due",
    "reminder_step",
    "escalation_step",
    "escalation_repeats",
)


@dataclass
class Built:
    url: str
    backend: str
    total: int
    due: int
    tasks: int
    seconds: float


@dataclass
class Measured:
    idle_before_ms: list[float]
    idle_after_ms: list[float]
    due_rows: int
    written: int
    ticks_s: list[float]
    rss_before_mib: float
    peak_rss_mib: float
    outbox_rows: int
    traced_tick_s: float
    traced_peak_mib: float
    plan: list[str]
    profile: str | None
    cpu_s: list[float] = field(default_factory=list)  # this process's CPU per tick


def log(message: str) -> None:
    print(message, flush=True)


def reset_peak_rss() -> bool:
    """Linux can reset a process's peak RSS (clear_refs 5): peaks then belong to what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """VmHWM, the peak RSS of this process image.  ru_maxrss would not do: after a fork and
    exec it still carries the parent's peak (here: the builder's row buffers)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- databases -------------------------------------------------------------------------------


def database(backend: str, pg_url: str) -> contextlib.AbstractContextManager[str]:
    """An empty database of its own, removed afterwards (the tests' own helper)."""
    return scratch_database(backend, pg_url)


# -- building the data ----------------------------------------------------------------------


def import_seed(db: DbEngine) -> tuple[str, list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """The real schedule gives people, units, members and policy; its own occurrences go."""
    loaded = load_schedule(SEED)
    assert loaded.ok and loaded.spec is not None, loaded.problems
    with session_scope(db) as session:
        import_schedule(session, loaded.spec, now=NOW, horizon_days=0, actor="bench")
        for person in session.exec(select(Person)).scalars():  # everyone reachable
            bind(
                session, person=person, platform="telegram", chat_id=f"{1000 + person.id}", now=NOW
            )
    with db.begin() as conn:
        conn.execute(delete(AuditEvent))
        conn.execute(delete(Occurrence))
        tasks = [dict(r._mapping) for r in conn.execute(select(Task.__table__))]
        members: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(select(TaskMember.__table__)):
            members.setdefault(r.task_id, []).append(dict(r._mapping))
    return loaded.spec.schedule, tasks, members


def clone_tasks(
    db: DbEngine,
    n_tasks: int,
    tasks: list[dict[str, Any]],
    members: dict[int, list[dict[str, Any]]],
) -> list[tuple[int, str]]:
    """n_tasks copies of the seed's tasks (round robin), with their members: (id, kind)."""
    next_task = max(t["id"] for t in tasks) + 1
    next_member = max((m["id"] for ms in members.values() for m in ms), default=0) + 1
    task_rows, member_rows, made = [], [], []
    for i in range(n_tasks):
        source = tasks[i % len(tasks)]
        task_id = next_task + i
        task_rows.append({**source, "id": task_id, "ref": f"B{i}", "position": 1000 + i})
        for m in members.get(source["id"], []):
            member_rows.append({**m, "id": next_member, "task_id": task_id})
            next_member += 1
        made.append((task_id, source["kind"]))
    with db.begin() as conn:
        for start in range(0, len(task_rows), 5000):
            conn.execute(insert(Task.__table__), task_rows[start : start + 5000])
        for start in range(0, len(member_rows), 5000):
            conn.execute(insert(TaskMember.__table__), member_rows[start : start + 5000])
    return made


def occurrence_rows(
    n: int, due: int, tasks: list[tuple[int, str]], schedule_id: str, seed: int, due_at: Any
) -> Iterator[tuple[Any, ...]]:
    """N open occurrences spread evenly over the tasks; ``due`` random ones are due at NOW.

    Due rows look freshly materialised (ladder not planned yet, next_action_at in the last two
    days) with due dates from 10 days ago to a week ahead, so the tick sends a mix of
    reminders and escalation steps.  The others were planned already and wait up to 60 days.
    """
    rng = random.Random(seed)
    due_ids = set(rng.sample(range(n), due))
    today = NOW.astimezone(TZ).date()
    created = NOW - timedelta(days=30)
    for i in range(n):
        task_id, task_kind = tasks[i % len(tasks)]
        period = PERIOD_BASE + timedelta(days=i // len(tasks))
        if i in due_ids:
            due_date = today + timedelta(days=rng.randint(-10, 7))
            next_at = NOW - timedelta(seconds=rng.uniform(0, 2 * 86400))
            planned, reminder = None, -1
        else:
            next_at = NOW + timedelta(seconds=rng.uniform(60, 60 * 86400))
            due_date = next_at.astimezone(TZ).date() + timedelta(days=rng.randint(0, 7))
            planned, reminder = due_date, 0
        kind = "deadline" if task_kind == "deadline" else "period"
        yield (
            i + 1,
            task_id,
            schedule_id,
            kind,
            period,
            period,
            due_date,
            due_at(due_date),
            1,
            0,
            "open",
            created,
            next_at,
            planned,
            reminder,
            -1,
            0,
        )


def write_occurrences(db: DbEngine, rows: Iterator[tuple[Any, ...]], n: int, label: str) -> None:
    """COPY on PostgreSQL; chunked executemany through SQLAlchemy Core on SQLite."""
    started = time.perf_counter()
    step = max(n // 10, CHUNK)
    done = 0

    def progress() -> None:
        elapsed = time.perf_counter() - started
        log(f"  {label}: {done:>9,}/{n:,} occurrences written ({elapsed:.1f}s)")

    if db.dialect.name == "postgresql":
        raw = db.raw_connection()
        try:
            cursor = raw.cursor()
            columns = ", ".join(OCC_COLUMNS)
            with cursor.copy(f"COPY occurrence ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
                    done += 1
                    if done % step == 0:
                        progress()
            raw.commit()
        finally:
            raw.close()
        return
    table = Occurrence.__table__
    chunk: list[dict[str, Any]] = []
    with db.begin() as conn:
        for row in rows:
            chunk.append(dict(zip(OCC_COLUMNS, row, strict=True)))
            if len(chunk) == CHUNK:
                conn.execute(insert(table), chunk)
                done += len(chunk)
                chunk = []
                if done % step == 0:
                    progress()
        if chunk:
            conn.execute(insert(table), chunk)
            done += len(chunk)


def build(url: str, backend: str, n: int, due: int, per_task: int, seed: int) -> Built:
    started = time.perf_counter()
    label = f"{backend} {n:,}"
    db = open_store(url)
    try:
        schedule_id, tasks, members = import_seed(db)
        n_tasks = max(1, math.ceil(n / per_task))
        made = clone_tasks(db, n_tasks, tasks, members)
        with db.connect() as conn:
            schedule = conn.execute(select(Schedule.__table__)).one()
        st = schedule_time(Schedule(**schedule._mapping))
        due_at_cache: dict[date, datetime] = {}

        def due_at(day: date) -> datetime:
            if day not in due_at_cache:
                due_at_cache[day] = st.due_at(day).astimezone(UTC)
            return due_at_cache[day]

        write_occurrences(db, occurrence_rows(n, due, made, schedule_id, seed, due_at), n, label)
        with db.begin() as conn:
            if backend == "postgresql":
                for table in ("occurrence", "task", "taskmember"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        if backend == "postgresql":  # what autovacuum would do after a bulk load
            with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
    finally:
        db.dispose()
    return Built(url, backend, n, due, n_tasks, time.perf_counter() - started)


# -- measuring (in a child process) -------------------------------------------------------


def _query_plan(db: DbEngine, batch: int) -> list[str]:
    """How the backend runs the tick's query (same shape as Engine.plan, bound parameters)."""
    params: dict[str, Any] = {"status": "open", "now": NOW}
    if db.dialect.name == "sqlite":
        params["now"] = NOW.replace(tzinfo=None)  # stored as naive UTC
        sql = "EXPLAIN QUERY PLAN "
    else:
        sql = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) "
    sql += (
        "SELECT * FROM occurrence WHERE status = :status AND next_action_at <= :now "
        f"ORDER BY next_action_at, id LIMIT {batch}"
    )
    if db.dialect.name == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"
    with db.connect() as conn:
        rows = conn.execute(text(sql), params).all()
        conn.rollback()
    return [str(r[-1]) for r in rows]


def _idle(engine: Engine, when: datetime, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        written = engine.plan(when)
        times.append((time.perf_counter() - started) * 1000)
        assert written == 0, f"an idle tick wrote {written} rows"
    return times


def _due_snapshot(db: DbEngine) -> list[dict[str, Any]]:
    table = Occurrence.__table__
    with db.connect() as conn:
        return [
            {"oid": r.id, "next_at": r.next_action_at}
            for r in conn.execute(
                select(table.c.id, table.c.next_action_at).where(
                    table.c.status == "open", table.c.next_action_at <= NOW
                )
            )
        ]


def _reset(db: DbEngine, snapshot: list[dict[str, Any]]) -> None:
    """Put the due rows back as they were and empty the outbox, to plan them again."""
    table = Occurrence.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("oid"))
        .values(
            next_action_at=bindparam("next_at"),
            planned_due=None,
            reminder_step=-1,
            escalation_step=-1,
            escalation_repeats=0,
            escalation=None,
        )
    )
    with db.begin() as conn:
        conn.execute(delete(Delivery))
        conn.execute(delete(Notification))
        conn.execute(delete(Bundle))
        conn.execute(statement, snapshot)
    # as the runtime's checkpoint job does between ticks (SQLite): a tick never pays for
    # copying the build's or the reset's log into the database
    checkpoint(db)


def _tick(engine: Engine, db: DbEngine) -> int:
    """One planning pass as the runtime runs it: plan what is due into bundles with a
    delivery per binding, gather what else is pending (the sending is measured by
    bench/dispatch.py; digests are not part of a tick's due rows)."""
    written, _, _ = engine.plan_pass(NOW, platforms=["telegram"], digests=False)
    return written


def measure(url: str, batch: int, repeat: int, profile: bool) -> Measured:
    """Runs in a fresh process: its maxrss is the engine's, not the builder's."""
    db = make_engine(url)
    engine = Engine(db, batch=batch)
    plan = _query_plan(db, batch)
    _idle(engine, IDLE_NOW, 2)  # warm imports, templates, the connection pool
    idle_before = _idle(engine, IDLE_NOW, repeat)
    snapshot = _due_snapshot(db)
    before = rss_mib()
    reset_peak_rss()
    ticks: list[float] = []
    cpus: list[float] = []
    for attempt in range(3):
        if attempt:
            _reset(db, snapshot)
        started, cpu = time.perf_counter(), time.process_time()
        written = _tick(engine, db)
        ticks.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    peak = peak_rss_mib()
    with db.connect() as conn:
        outbox_rows = conn.execute(select(func.count()).select_from(Notification)).scalar_one()
    idle_after = _idle(engine, NOW, repeat)

    _reset(db, snapshot)
    tracemalloc.start()
    started = time.perf_counter()
    _tick(engine, db)
    traced = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    report = None
    if profile:
        _reset(db, snapshot)
        profiler = cProfile.Profile()
        profiler.enable()
        _tick(engine, db)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(
            r"/bot/|session.py.*(flush|execute)|cursor.py.*execute", 30
        )
        stats.sort_stats("tottime").print_stats(15)
        report = out.getvalue()
    db.dispose()
    return Measured(
        idle_before,
        idle_after,
        len(snapshot),
        written,
        ticks,
        before,
        peak,
        outbox_rows,
        traced,
        traced_peak / 2**20,
        plan,
        report,
        cpus,
    )


# -- driver ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for backend in args.backends:
        for n in args.sizes:
            log(f"\n== {backend}, {n:,} open occurrences ==")
            with database(backend, args.pg_url) as url:
                due = args.due if args.due is not None else round(n * args.due_fraction)
                built = build(url, backend, n, due, args.per_task, args.seed)
                log(f"  built in {built.seconds:.1f}s ({built.tasks:,} tasks)")
                with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                    m = pool.submit(measure, url, args.batch, args.repeat, args.profile).result()
                if backend == "sqlite":
                    size = Path(url.removeprefix("sqlite:///")).stat().st_size / 2**20
                else:
                    db = make_engine(url)
                    with db.connect() as conn:
                        size = (
                            conn.execute(
                                text("SELECT pg_total_relation_size('occurrence')")
                            ).scalar_one()
                            / 2**20
                        )
                    db.dispose()
            row = summarise(backend, built, m, size)
            results.append(row)
            log("  query plan: " + " | ".join(m.plan))
            for key, value in row.items():
                log(f"  {key:<28} {value}")
            if m.profile:
                log(m.profile)
    return results


def summarise(backend: str, built: Built, m: Measured, size_mib: float) -> dict[str, Any]:
    return {
        "backend": backend,
        "rows total": built.total,
        "rows due": m.due_rows,
        "build s": round(built.seconds, 1),
        "db size MiB": round(size_mib),
        "idle tick ms (median/max)": (
            f"{statistics.median(m.idle_before_ms):.2f}/{max(m.idle_before_ms):.2f}"
        ),
        "due tick ms (min/median of 3)": (
            f"{min(m.ticks_s) * 1000:.1f}/{statistics.median(m.ticks_s) * 1000:.1f}"
        ),
        # wall time on a shared host is mostly waiting for a core; CPU is the work itself
        # (this process's: SQLite's work, but not the PostgreSQL server's)
        "due tick CPU ms (min/median)": (
            f"{min(m.cpu_s) * 1000:.1f}/{statistics.median(m.cpu_s) * 1000:.1f}" if m.cpu_s else "-"
        ),
        "ms/row (median)": (
            round(statistics.median(m.ticks_s) * 1000 / m.due_rows, 3) if m.due_rows else 0
        ),
        "outbox rows": m.outbox_rows,
        "plan() returned": m.written,
        "idle after ms (median)": round(statistics.median(m.idle_after_ms), 2),
        "RSS MiB (before/peak)": f"{m.rss_before_mib:.0f}/{m.peak_rss_mib:.0f}",
        "tracemalloc peak MiB": round(m.traced_peak_mib, 1),
        "tick s under tracemalloc": round(m.traced_tick_s, 2),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="open occurrences")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--due-fraction", type=float, default=0.01)
    parser.add_argument("--due", type=int, default=None, help="due rows (instead of a fraction)")
    parser.add_argument("--per-task", type=int, default=200, help="occurrences per task")
    parser.add_argument("--batch", type=int, default=500, help="Engine(batch=...)")
    parser.add_argument("--repeat", type=int, default=30, help="idle ticks to time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--profile", action="store_true", help="cProfile one due tick")
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    results = run(args)
    log("\n" + table(results))
    log(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
