"""/healthz and /metrics over real HTTP (uvicorn on a free port), on SQLite and PostgreSQL:
the store's gauges follow what the planner queued and the sender sent; a store that is
behind its migrations, or unreachable, answers 503."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from types import SimpleNamespace

import httpx
from sqlalchemy import Engine, text

from bot.adapters.base import RecordingAdapter
from bot.clock import SimulatedClock
from bot.identities import bind_everyone
from bot.store.db import make_engine, session_scope
from bot.worker import Worker
from tests.fakes.chat import REMIND_DAY, seed
from tests.web.conftest import serve


def _sample(body: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the text exposition format, or None when absent."""
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def test_health_and_metrics_follow_the_queue(engine: Engine) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    with session_scope(engine) as session:
        bind_everyone(session, platform="memory", now=clock.now())
    adapter = RecordingAdapter(platform="memory")
    worker = Worker(engine, adapter, clock, name="ops")
    worker.plan_pass(clock.now())  # reminders planned and gathered, nothing sent yet
    clock.advance(timedelta(minutes=10))

    for served in serve(engine, clock):
        served.app.state.frontends = [SimpleNamespace(adapter=adapter)]  # the platforms named
        with httpx.Client(base_url=served.url) as client:
            health = client.get("/healthz")
            assert health.status_code == 200, health.text
            body = health.json()
            assert body["status"] == "ok" and body["database"]["at_head"] is True
            assert body["adapters"]["memory"]["last_ok"] is None  # nothing sent yet

            scraped = client.get("/metrics")
            assert scraped.headers["content-type"].startswith("text/plain")
            assert _sample(scraped.text, "dutybot_store_up") == 1
            assert (_sample(scraped.text, "dutybot_queue_depth") or 0) >= 1
            oldest = _sample(scraped.text, "dutybot_queue_oldest_due_seconds")
            assert oldest is not None and oldest >= 600
            assert (_sample(scraped.text, "dutybot_notifications", kind="reminder") or 0) >= 1
            before = _sample(scraped.text, "dutybot_sends_total", platform="memory", outcome="sent")

            asyncio.run(worker.dispatcher.drain())
            assert adapter.sent

            scraped = client.get("/metrics").text
            assert _sample(scraped, "dutybot_queue_depth") == 0
            assert _sample(scraped, "dutybot_queue_oldest_due_seconds") == 0
            sent = _sample(scraped, "dutybot_sends_total", platform="memory", outcome="sent")
            assert sent is not None and sent - (before or 0) == len(adapter.sent)
            assert _sample(scraped, "dutybot_notifications", kind="reminder", state="sent")
            last = client.get("/healthz").json()["adapters"]["memory"]["last_ok"]
            assert last is not None and last.startswith(clock.now().date().isoformat())


def test_a_store_behind_its_migrations_or_down_is_503(engine: Engine) -> None:
    for served in serve(engine):
        with httpx.Client(base_url=served.url) as client:
            assert client.get("/healthz").status_code == 200
            with engine.begin() as connection:
                connection.execute(text("UPDATE alembic_version SET version_num = '0004'"))
            behind = client.get("/healthz")
            assert behind.status_code == 503
            assert behind.json()["database"]["at_head"] is False
    down = make_engine("postgresql://postgres@127.0.0.1:1/none")
    for served in serve(down):
        with httpx.Client(base_url=served.url) as client:
            refused = client.get("/healthz")
            assert refused.status_code == 503 and refused.json()["status"] == "failing"
            assert refused.json()["database"]["ok"] is False
            scraped = client.get("/metrics")  # process metrics still served
            assert scraped.status_code == 200 and _sample(scraped.text, "dutybot_store_up") == 0
            assert "dutybot_send_latency_seconds" in scraped.text
