"""Shared by the web tests: a real list imported and people bound, sign-in links by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from bot.clock import SimulatedClock
from bot.identities import identity_of
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Person
from bot.web.app import create_app
from bot.web.auth import SIGNIN, issue_token
from tests.fakes.outbox import seed_bound


def seed_list(engine: Engine, imported: datetime, platform: str = "memory") -> dict[str, int]:
    """fengdu-ndrc-2022 imported with everyone bound on ``platform``: name → person id."""
    return seed_bound(engine, platform=platform, imported=imported)


def signin_link(engine: Engine, name: str, now: datetime) -> str:
    """A fresh one-time sign-in path for the person of this name."""
    with session_scope(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        identity_id = identity_of(session, person, now)
        token = issue_token(
            session, identity_id=identity_id, kind=SIGNIN, now=now, ttl=timedelta(minutes=15)
        )
    return f"/login/{token}"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def signed_in(engine: Engine, name: str, now: datetime) -> tuple[TestClient, str]:
    """A test client signed in as ``name`` through a one-time link, and its CSRF token."""
    client = TestClient(
        create_app(Settings(web_secret="t"), engine=engine, clock=SimulatedClock(now))
    )
    link = signin_link(engine, name, now)
    client.post(link, data={"csrf": csrf_of(client.get(link).text)})
    page = client.get("/ledger")
    assert name in page.text
    return client, csrf_of(page.text)


@contextmanager
def phone_page(
    browser: Any, web: Any, name: str, now: datetime, *, timeout: int = 15000
) -> Iterator[Any]:
    """A page 390 px wide (a phone's in-app browser), signed in as ``name`` by a one-time
    link and landed on /ledger; closed afterwards."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(timeout)
    try:
        page.goto(web.url + signin_link(web.engine, name, now))
        page.click("#signin")
        page.wait_for_url(f"{web.url}/ledger")
        yield page
    finally:
        page.close()
