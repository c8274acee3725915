"""People and units in a real Chromium at 390 px: who is bound where, who cannot be reached,
an invite with its QR code that binds the person it was made for (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.clock import SimulatedClock
from bot.conversation.invites import redeem
from bot.identities import bindings_of, mark_unreachable
from bot.roster import Roster
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Person, Schedule, Task
from tests.conftest import local
from tests.web.conftest import Served, serve
from tests.web.helpers import phone_page, seed_list

NOW = local(2022, 6, 27, 10, 0)
LIST = "fengdu-ndrc-2022"


@pytest.fixture
def web(engine: Engine) -> Iterator[Served]:
    seed_list(engine, NOW)
    with session_scope(engine) as session:
        person = session.exec(select(Person).where(Person.name == "能源科联络员")).one()
        assert person.identity_id is not None
        binding = bindings_of(session, person.identity_id)[0]
        mark_unreachable(session, binding, reason="blocked", now=NOW)
    yield from serve(engine, SimulatedClock(NOW), telegram_bot_username="dutybot_test_bot")


def test_an_admin_sees_bindings_and_invites_with_a_qr_code(web: Served, browser: Any) -> None:
    with phone_page(browser, web, "办公室联络员", NOW) as page:
        page.click(f'a[href="/s/{LIST}/people"]')
        page.wait_for_url(f"**/s/{LIST}/people")
        assert "无法送达 1 人：能源科联络员" in page.content()
        assert "blocked" in page.locator('li[data-name="能源科联络员"]').inner_text()
        assert "已绑定" in page.locator('li[data-name="熊伟"]').inner_text()
        assert "公管科联络员" in page.locator("text=公管科：").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator('li[data-name="熊伟"] button.invite').click()
        page.wait_for_selector("#invite .qr svg")
        link = page.locator("#invite a").get_attribute("href")
        assert link is not None and link.startswith("https://t.me/dutybot_test_bot?start=")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path="/tmp/dutybot-people-390.png", full_page=False)
    token = parse_qs(urlparse(link).query)["start"][0]
    with session_scope(web.engine) as session:
        bound = redeem(session, token=token, platform="telegram", chat_id="777", now=NOW)
        assert bound.name == "熊伟"
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "invite_created")).one()
        assert event.channel == "web"
    with session_scope(web.engine) as session:
        chat = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "777")).one()
        assert chat.platform == "telegram"


def test_an_admin_changes_a_units_contacts(web: Served, browser: Any) -> None:
    with phone_page(browser, web, "办公室联络员", NOW) as page:
        page.goto(f"{web.url}/s/{LIST}/people")
        unit = page.locator('li[data-unit="公管科"]')
        unit.locator("input[name=contacts]").fill("公管科联络员、无此人")
        unit.locator("button").click()
        page.wait_for_selector(".refused")
        assert "不在本清单人员中：无此人" in page.content()
        unit = page.locator('li[data-unit="公管科"]')
        unit.locator("input[name=contacts]").fill("公管科联络员、能源科联络员")
        unit.locator("button").click()
        page.wait_for_selector('li[data-unit="公管科"] .notice')
        contacts = page.locator('li[data-unit="公管科"] .contacts').inner_text()
        assert contacts == "公管科联络员、能源科联络员"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    with session_scope(web.engine) as session:
        schedule = session.get(Schedule, LIST)
        assert schedule is not None
        task = session.exec(select(Task).where(Task.ref == "25")).one()
        assert task.id is not None
        roster = Roster.cached(session, schedule)  # every process reads the new contacts
        assert roster.names(roster.assignees(task.id)) == ["公管科联络员", "能源科联络员"]
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "unit_contacts_changed")
        ).one()
        assert event.channel == "web" and event.detail == {
            "unit": "公管科",
            "contacts": ["公管科联络员", "能源科联络员"],
        }


def test_officials_may_not_open_the_people_page(web: Served, browser: Any) -> None:
    with phone_page(browser, web, "熊伟", NOW) as page:
        answer = page.goto(f"{web.url}/s/{LIST}/people")
        assert answer is not None and answer.status == 403
        assert "无权访问" in page.content() and "能源科联络员" not in page.content()
