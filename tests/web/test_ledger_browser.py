"""The ledger in a real Chromium at 390 px: a leader signs in by link, filters and searches
the dashboard, opens a task's timeline and approves an extension; the official's chat is
told (the worker sends the notice through the recording adapter)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot import replies
from bot.adapters.base import RecordingAdapter
from bot.clock import SimulatedClock
from bot.messages import plain_text
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Occurrence, Reply, Task
from bot.worker import Worker
from tests.conftest import local
from tests.web.conftest import Served, serve
from tests.web.helpers import phone_page, seed_list

NOW = local(2022, 6, 27, 10, 0)  # a Monday: working hours


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


@pytest.fixture
def listed(engine: Engine, clock: SimulatedClock) -> Iterator[tuple[Served, dict[str, int]]]:
    people = seed_list(engine, NOW)
    with session_scope(engine) as session:
        occ = session.exec(select(Occurrence).join(Task).where(Task.ref == "25")).one()
        assert occ.id is not None
        replies.request_extension(
            session,
            occurrence_id=occ.id,
            person_id=people["公管科联络员"],
            now=NOW,
            new_date=date(2022, 7, 29),
            reason="等待批复",
        )
    yield from ((served, people) for served in serve(engine, clock))


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def _send_due(engine: Engine, clock: SimulatedClock) -> RecordingAdapter:
    """One worker tick, in a thread of its own (Playwright's loop runs in this one)."""
    adapter = RecordingAdapter()
    worker = Worker(engine, adapter, clock)
    thread = threading.Thread(target=lambda: asyncio.run(worker.tick()))
    thread.start()
    thread.join(timeout=60)
    return adapter


def test_a_leader_filters_the_ledger_and_approves_an_extension(
    listed: tuple[Served, dict[str, int]], browser: Any, clock: SimulatedClock
) -> None:
    web, people = listed
    with phone_page(browser, web, "熊伟", NOW) as page:
        task = page.locator('li.task[data-ref="25"]')
        assert "延期待审批" in task.inner_text()
        assert page.locator("#overdue-chart .bar").count() >= 1  # 35 was due 2022-03-31
        _fits(page)
        # a leader sees only what they lead or answer for: 邓清华's own duties are not listed
        refs = page.locator("li.task").evaluate_all("els => els.map(e => e.dataset.ref)")
        assert "25" in refs and len(refs) < 60
        page.select_option("select[name=unit]", "公管科")
        page.wait_for_url("**unit=*")
        units = page.locator("li.task .meta").all_inner_texts()
        assert units and all("公管科" in text for text in units)
        page.fill("#q", "资质")
        page.wait_for_function("document.querySelectorAll('li.task').length === 1")
        assert page.locator("li.task").get_attribute("data-ref") == "25"
        page.screenshot(path="/tmp/dutybot-ledger-390.png", full_page=True)

        page.click('li.task[data-ref="25"] a')
        page.wait_for_url("**/t/*")
        assert "申请延期" in page.locator(".timeline").inner_text()
        _fits(page)
        page.click("button.approve")
        page.wait_for_selector(".notice")
        assert "已批准延期" in page.locator(".notice").inner_text()
        assert page.locator("button.approve").count() == 0
        assert "延期审批" in page.locator(".timeline").inner_text()
        page.screenshot(path="/tmp/dutybot-task-390.png", full_page=True)
    with session_scope(web.engine) as session:
        reply = session.exec(select(Reply).where(Reply.kind == "extension")).one()
        assert reply.decision == "approved" and reply.decided_by_id == people["熊伟"]
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "extension_approved")
        ).one()
        assert event.channel == "web"
    sent = _send_due(web.engine, clock)
    told = [
        plain_text(m.message) for m in sent.sent if m.chat_id == str(1000 + people["公管科联络员"])
    ]
    assert any("延期已批准" in text and "2022-07-29" in text for text in told), told
