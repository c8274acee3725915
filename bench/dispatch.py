"""Dispatch throughput: the real dispatcher and TelegramAdapter over HTTP to a fake Bot API.

Prints figures; it is not a test.  Each scenario fills a fresh outbox (SQLite by default,
PostgreSQL with --backends) with ``admin_alert`` rows -- they render from a two-field
payload -- for people bound to Telegram chats, then times ``Dispatcher.drain()``.
The fake server (tests/fakes/botapi.FakeBotApi, its asyncio front end unless --front threads)
runs in its own process, so it does not compete with the dispatcher for the GIL; at the end
its recorded sendMessage calls are checked: every message must have arrived exactly once.

With rate limits ON the dispatcher paces by the adapter's RateLimits (30/s overall,
1/s per chat); OFF uses an adapter whose ``limits`` is None.  Send latency is the
adapter's ``send`` round trip (pacing waits excluded); db s is the time spent in the
dispatcher's claim/prepare/record transactions.

    .venv/bin/python bench/dispatch.py                      # every scenario, SQLite
    .venv/bin/python bench/dispatch.py --scenarios many-off,one-on --backends sqlite,postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import io
import os
import pstats
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, insert, select

from bot.adapters.base import Delivery as Receipt
from bot.adapters.telegram import TelegramAdapter, render_html, split_message
from bot.clock import SimulatedClock
from bot.dispatch import Dispatcher, SendPolicy
from bot.identities import ensure_identities
from bot.messages import OutboundMessage
from bot.store.db import open_store, session_scope
from bot.store.models import ChatBinding, Delivery, Person, Schedule
from tests.fakes.databases import scratch_database
from tests.fakes.outbox import queue_alone

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 12, 10, 0, tzinfo=TZ).astimezone(UTC)  # a working day, in hours
PG_URL = os.environ.get("DUTYBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEDULE = "bench"
FIRST_CHAT = 100_000
MARKER = re.compile(r"bench-\d{5}")


@dataclass(frozen=True)
class Scenario:
    name: str
    messages: int
    chats: int
    limits: bool
    grouped: bool = False  # a chat's messages queued one after another, not round robin
    rtt: float = 0.0  # seconds the fake server waits before answering each sendMessage
    local: bool = False  # no HTTP: rendered for Telegram and kept in memory (the machinery)

    @property
    def bound(self) -> float:
        """Fastest possible time under the limits: 30/s overall, 1/s per chat."""
        if not self.limits:
            return 0.0
        per_chat = -(-self.messages // self.chats)
        return max((self.messages - 30) / 30, per_chat - 1, 0)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("many-off", 2000, 200, limits=False),
        Scenario("many-on", 2000, 200, limits=True),
        Scenario("one-off", 300, 1, limits=False),
        Scenario("one-on", 20, 1, limits=True),
        Scenario("spread-on", 300, 30, limits=True),
        Scenario("grouped-on", 300, 30, limits=True, grouped=True),
        Scenario("many-off-rtt", 2000, 200, limits=False, rtt=0.1),
        Scenario("many-off-local", 2000, 200, limits=False, local=True),
        Scenario("slow-on", 300, 300, limits=True, rtt=1.0),
    )
}
DEFAULT = ",".join(SCENARIOS)


def log(message: str) -> None:
    print(message, flush=True)


# -- the fake Bot API in its own process ---------------------------------------------------------


def serve(conn: Connection, front: str = "threads", cpu: int | None = None) -> None:
    """Child process: run FakeBotApi and answer commands until told to stop."""
    from tests.fakes.botapi import FakeBotApi, Fault

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    with FakeBotApi(front=front) as api:
        conn.send((api.token, api.base_url))
        while True:
            command, arg = conn.recv()
            if command == "stop":
                break
            if command == "clear":
                api.clear_calls()
                conn.send(None)
            elif command == "cpu":  # seconds of CPU this server process has used so far
                conn.send(time.process_time())
            elif command == "slow":
                api.inject("sendMessage", *[Fault.slow(arg[1])] * arg[0])
                conn.send(None)
            elif command == "sent":
                calls = api.calls_to("sendMessage")
                conn.send(
                    [(c.chat_id, str(c.params.get("text", "")), c.status, c.at) for c in calls]
                )
            elif command == "answered":  # when each answer left the server, too
                calls = api.calls_to("sendMessage")
                conn.send(
                    [
                        (c.chat_id, str(c.params.get("text", "")), c.status, c.at, c.answered)
                        for c in calls
                    ]
                )


class FakeServer:
    """Handle on the child process running the fake server: ``front`` "threads" is the test
    suite's thread per connection, "asyncio" one event loop (tests.fakes.botapi); ``cpu``
    pins the server to one core."""

    def __init__(self, front: str = "threads", cpu: int | None = None) -> None:
        context = get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, front, cpu), daemon=True)
        self._process.start()
        self.front = front
        self.token, self.base_url = self._conn.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send(("stop", None))
        self._process.join(timeout=10)


# -- adapters and dispatcher, instrumented -----------------------------------------------------


class TimedTelegramAdapter(TelegramAdapter):
    """The real adapter; remembers how long each send took (the HTTP round trip)."""

    def __init__(self, *args: Any, paced: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not paced:
            self.limits = None
        self.latencies: list[float] = []

    async def send(self, message: OutboundMessage) -> Receipt:
        started = time.perf_counter()
        try:
            return await super().send(message)
        finally:
            self.latencies.append(time.perf_counter() - started)


class LocalTelegram:
    """The dispatcher's side of a send without the network: the message is rendered and
    split as TelegramAdapter does, then kept with its arrival instant, as the fake server
    would record it.  What the dispatcher itself costs (claim, compose, record, pacing)."""

    platform = "telegram"

    def __init__(self) -> None:
        self.limits = None
        self.latencies: list[float] = []
        self.calls: list[tuple[str, str, int, float]] = []

    async def send(self, message: OutboundMessage) -> Receipt:
        started = time.perf_counter()
        text, _ = render_html(message.message)
        for part in split_message(text):
            self.calls.append((message.chat_id, part, 200, time.monotonic()))
        await asyncio.sleep(0)  # a send yields to the loop, as any I/O does
        self.latencies.append(time.perf_counter() - started)
        return Receipt(message_ref=str(len(self.calls)))

    async def __aenter__(self) -> LocalTelegram:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def timed(dispatcher: Dispatcher, spent: dict[str, float]) -> None:
    """Wrap the dispatcher's database steps so their time can be reported."""
    for name in ("claim", "_prepare", "record"):
        method = getattr(dispatcher, name, None)
        if method is None or asyncio.iscoroutinefunction(method):
            continue

        def wrapper(
            *args: Any, _m: Callable[..., Any] = method, _n: str = name, **kwargs: Any
        ) -> Any:
            started = time.perf_counter()
            try:
                return _m(*args, **kwargs)
            finally:
                spent[_n] = spent.get(_n, 0.0) + time.perf_counter() - started

        setattr(dispatcher, name, functools.wraps(method)(wrapper))


# -- databases ---------------------------------------------------------------------------------


def database(backend: str, pg_url: str) -> contextlib.AbstractContextManager[str]:
    """An empty database of its own, removed afterwards (the tests' own helper)."""
    return scratch_database(backend, pg_url)


def fill(db: DbEngine, scenario: Scenario) -> dict[str, str]:
    """People bound to chats and their messages, each its own bundle (one message per
    delivery); returns marker -> chat id."""
    with session_scope(db) as session:
        session.add(
            Schedule(
                id=SCHEDULE,
                title="bench",
                content_hash="0" * 64,
                planned_from=date(2024, 1, 1),
                imported_at=NOW,
            )
        )
        session.flush()
        session.execute(
            insert(Person),
            [{"schedule_id": SCHEDULE, "name": f"官员{i:04d}"} for i in range(scenario.chats)],
        )
        people = session.exec(select(Person).order_by(Person.id)).scalars().all()  # type: ignore[attr-defined]
        ensure_identities(session, list(people), NOW)
        session.execute(
            insert(ChatBinding),
            [
                {
                    "identity_id": person.identity_id,
                    "platform": "telegram",
                    "chat_id": str(FIRST_CHAT + i),
                    "user_id": str(FIRST_CHAT + i),
                    "via": "invite",
                    "bound_at": NOW,
                    "active": True,
                }
                for i, person in enumerate(people)
            ],
        )
        ids = [p.id for p in people]
    per_chat = -(-scenario.messages // scenario.chats)
    order = (
        [ids[k // per_chat] for k in range(scenario.messages)]  # a chat's messages together
        if scenario.grouped
        else ids
    )
    markers = queue_alone(
        db,
        order,
        scenario.messages,
        start=NOW - timedelta(minutes=per_chat + 1),
        platforms=["telegram"],
        schedule_id=SCHEDULE,
        prefix="bench",
    )
    chat_of = {pid: str(FIRST_CHAT + i) for i, pid in enumerate(ids)}
    return {marker: chat_of[order[k % len(order)]] for k, marker in enumerate(markers)}


def most_in_any_second(stamps: list[float]) -> int:
    """The largest number of sends the server received inside any one-second interval."""
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, at in enumerate(stamps):
        while at - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- one scenario --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def dispatch(
    db: DbEngine, server: FakeServer, scenario: Scenario, profile: bool, tuning: dict[str, int]
) -> dict[str, Any]:
    pool = {"connection_pool_size": tuning["pool"]} if tuning.get("pool") else {}
    adapter: TimedTelegramAdapter | LocalTelegram = (
        LocalTelegram()
        if scenario.local
        else TimedTelegramAdapter(
            server.token, base_url=server.base_url, paced=scenario.limits, **pool
        )
    )
    fields = {k: v for k, v in tuning.items() if k != "pool" and v}
    policy = SendPolicy(**fields) if fields else None  # type: ignore[arg-type]
    spent: dict[str, float] = {}
    profiler = cProfile.Profile() if profile else None
    async with adapter:
        dispatcher = Dispatcher(db, adapter, SimulatedClock(NOW), worker="bench", policy=policy)
        await asyncio.to_thread(dispatcher.register)
        timed(dispatcher, spent)
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        stats = await dispatcher.drain()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
                r"/bot/|telegram/_bot.py.*send_message|httpx/_client.py.*send", 30
            )
            log(out.getvalue())
    return {
        "calls": adapter.calls if isinstance(adapter, LocalTelegram) else None,
        "elapsed": elapsed,
        "cpu": cpu,
        "stats": stats,
        "latencies": adapter.latencies,
        "db_s": sum(spent.values()),
        "spent": spent,
    }


def run_scenario(
    backend: str,
    pg_url: str,
    server: FakeServer,
    scenario: Scenario,
    profile: bool = False,
    tuning: dict[str, int] | None = None,
) -> dict[str, Any]:
    server.ask("clear")
    server_cpu = server.ask("cpu")
    if scenario.rtt:
        server.ask("slow", (scenario.messages, scenario.rtt))
    with database(backend, pg_url) as url:
        db = open_store(url)
        try:
            expected = fill(db, scenario)
            result = asyncio.run(dispatch(db, server, scenario, profile, tuning or {}))
            with db.connect() as conn:
                states = dict(
                    conn.execute(
                        select(Delivery.state, func.count()).group_by(Delivery.state)  # type: ignore[arg-type]
                    ).all()
                )
        finally:
            db.dispose()
    server_cpu = server.ask("cpu") - server_cpu
    calls = result["calls"] if scenario.local else server.ask("sent")
    arrived: Counter[str] = Counter()
    wrong_chat = 0
    stamps = [at for _, _, status, at in calls if status == 200]
    for chat_id, body, status, _at in calls:
        if status != 200:
            continue
        for marker in MARKER.findall(body):
            if marker in expected:
                arrived[marker] += 1
                wrong_chat += expected[marker] != chat_id
    missing = sum(1 for m in expected if arrived[m] == 0)
    doubled = sum(1 for m in expected if arrived[m] > 1)
    stats = result["stats"]
    latencies = [x * 1000 for x in result["latencies"]]
    elapsed = result["elapsed"]
    return {
        "backend": backend,
        "scenario": scenario.name,
        "messages": scenario.messages,
        "chats": scenario.chats,
        "limits": "on" if scenario.limits else "off",
        "order": "grouped" if scenario.grouped else "round robin",
        "rtt ms": round(scenario.rtt * 1000),
        "total s": round(elapsed, 2),
        "msgs/s": round(stats.sent / elapsed, 1) if elapsed else 0,
        "bound s": round(scenario.bound, 1),
        "max in any 1 s": most_in_any_second(stamps),
        "p50 ms": round(percentile(latencies, 0.5), 1),
        "p95 ms": round(percentile(latencies, 0.95), 1),
        "db s": round(result["db_s"], 2),
        # CPU of this process (every thread) and of the fake server's, per message sent
        "cpu us/msg ours/server": f"{result['cpu'] / max(stats.sent, 1) * 1e6:.0f}/"
        f"{server_cpu / max(stats.sent, 1) * 1e6:.0f}",
        "claim/prepare/record s": "/".join(
            f"{result['spent'].get(n, 0.0):.2f}" for n in ("claim", "_prepare", "record")
        ),
        "sent": stats.sent,
        "retried/failed": f"{stats.retried}/{stats.failed}",
        "arrived once": sum(1 for m in expected if arrived[m] == 1),
        "missing/dup/wrong": f"{missing}/{doubled}/{wrong_chat}",
        "http calls": len(calls),
        "delivery states": ",".join(f"{k}={v}" for k, v in sorted(states.items())),
    }


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table, ready to paste into bench/README.md."""
    keys = list(results[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in results:
        cells = [f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=DEFAULT, help=f"from: {DEFAULT}")
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgresql")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--profile", action="store_true", help="cProfile each drain")
    parser.add_argument("--pool", type=int, default=0, help="adapter's HTTP connections")
    parser.add_argument(
        "--policy",
        default="",
        help="SendPolicy integers to try, e.g. concurrency=128,prepare_slice=100,batch=400",
    )
    parser.add_argument(
        "--front",
        default="asyncio",
        choices=("asyncio", "threads"),
        help="the fake Bot API's front end: one event loop (default) or the tests' threads",
    )
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.policy = {
        key.strip(): int(value)
        for key, _, value in (item.partition("=") for item in args.policy.split(",") if item)
    }
    if set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("backends: sqlite, postgresql")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    server = FakeServer(args.front)
    results = []
    try:
        for backend in args.backends:
            for name in args.scenarios:
                scenario = SCENARIOS[name]
                log(
                    f"\n== {backend}: {name} ({scenario.messages} messages to {scenario.chats} "
                    f"chats, limits {'on' if scenario.limits else 'off'}) =="
                )
                tuning = {"pool": args.pool, **args.policy}
                row = run_scenario(backend, args.pg_url, server, scenario, args.profile, tuning)
                results.append(row)
                for key, value in row.items():
                    log(f"  {key:<18} {value}")
    finally:
        server.close()
    log("\n" + table(results))
    log(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
