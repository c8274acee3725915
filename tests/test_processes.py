"""Real OS processes: a dispatcher killed with SIGKILL mid-batch, and two workers on one database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.store.db import open_store, session_scope
from bot.store.models import Delivery, Notification
from tests.conftest import ROOT, fresh_database, local
from tests.fakes.botapi import FakeBotApi, Fault
from tests.fakes.outbox import queue_alone, seed_bound

NOW = local(2022, 6, 1, 9, 0)  # a Wednesday, inside working hours
TOKEN = "123456:TEST-token"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as server:
        yield server


def worker(
    url: str, api: FakeBotApi, *, now: str, name: str, extra: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.worker_process",
            "--db",
            url,
            "--api",
            api.base_url,
            "--token",
            TOKEN,
            "--now",
            now,
            "--name",
            name,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def texts(api: FakeBotApi) -> Counter[str]:
    return Counter(
        call.params["text"] for call in api.calls_to("sendMessage") if call.status == 200
    )


def states(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(n.state for n in session.exec(select(Notification)).all())


def seeded(engine: Engine) -> dict[str, int]:
    return seed_bound(engine, platform="telegram", imported=local(2022, 5, 23, 8, 0))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_mid_batch_loses_nothing_and_repeats_at_most_the_in_flight(
    kind: str, api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_database(kind, tmp_path_factory.mktemp("kill")) as url:
        engine = open_store(url)
        people = seeded(engine)
        names = sorted(people)[:6]
        queue_alone(engine, [people[n] for n in names], 60, start=NOW, platforms=["telegram"])
        start = NOW + timedelta(minutes=10)  # every message is due
        api.inject("sendMessage", *[Fault.slow(0.15) for _ in range(200)])  # a slow chat service
        first = worker(
            url, api, now=start.isoformat(), name="doomed", extra=("--lease", "60", "--batch", "30")
        )
        deadline = time.monotonic() + 60
        while len(api.calls_to("sendMessage")) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # mid-batch: 30 claimed, some answered, some in flight
        first.wait(timeout=10)
        delivered_before = len(api.calls_to("sendMessage"))
        assert 0 < delivered_before < 60
        # restarted at once under the same name, well inside the dead worker's 60 s lease: it
        # takes back what its previous run held instead of waiting for the lease
        later = (start + timedelta(seconds=5)).isoformat()
        result = finish(
            worker(url, api, now=later, name="doomed", extra=("--lease", "60", "--batch", "30"))
        )
        assert states(engine) == Counter({"sent": 60})  # nothing lost
        seen = texts(api)
        assert len(seen) == 60
        repeated = sum(n - 1 for n in seen.values())
        # only messages whose send had begun but whose outcome was not yet recorded repeat:
        # with one chat at a time per person, at most one per chat (6 chats)
        assert repeated <= len(names), seen
        assert isinstance(result["sent"], int) and result["sent"] >= 60 - delivered_before
        engine.dispose()


def test_two_worker_processes_on_postgresql_never_send_the_same_notification_twice(
    api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_database("postgresql", tmp_path_factory.mktemp("two")) as url:
        engine = open_store(url)
        people = seeded(engine)  # the real schedule: plenty of occurrences to plan
        queue_alone(
            engine,
            [people[n] for n in sorted(people)[:10]],
            120,
            start=NOW,
            platforms=["telegram"],
            prefix="bulk",
        )
        now = (NOW + timedelta(minutes=15)).isoformat()  # reminders and escalations are due
        a = worker(url, api, now=now, name="a", extra=("--plan", "--batch", "10"))
        b = worker(url, api, now=now, name="b", extra=("--plan", "--batch", "10"))
        ra, rb = finish(a), finish(b)
        with session_scope(engine) as session:
            rows = session.exec(select(Notification)).all()
            assert rows and all(r.state == "sent" for r in rows), Counter(r.state for r in rows)
            deliveries = session.exec(select(Delivery)).all()
            assert all(d.state == "sent" for d in deliveries)
            total = len(deliveries)
        seen = texts(api)
        sent_calls = sum(seen.values())
        assert sent_calls == total, (sent_calls, total)  # every message reached its chat once
        assert ra["sent"] > 0 and rb["sent"] > 0, (ra, rb)  # both workers shared the work
        assert ra["sent"] + rb["sent"] == total
        engine.dispose()
