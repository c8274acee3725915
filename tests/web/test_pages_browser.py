"""In a real Chromium: sign in by link, and the page fits a 390 px phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import SystemClock
from bot.store.db import session_scope
from bot.store.models import Identity
from bot.web.auth import SIGNIN, issue_token
from tests.web.conftest import Served


def test_sign_in_by_link_at_390_px(web: Served, browser: Any) -> None:
    now = SystemClock().now()
    with session_scope(web.engine) as session:
        identity = Identity(name="张敏", created_at=now)
        session.add(identity)
        session.flush()
        assert identity.id is not None
        token = issue_token(
            session, identity_id=identity.id, kind=SIGNIN, now=now, ttl=timedelta(minutes=15)
        )
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{web.url}/login/{token}")
        page.click("#signin")
        page.wait_for_url(f"{web.url}/ledger")
        assert "张敏" in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path="/tmp/dutybot-web-390.png", full_page=True)
        page.goto(f"{web.url}/login/{token}")  # spent
        assert "链接无效或已过期" in page.content()
    finally:
        page.close()
