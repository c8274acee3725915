"""Sign-in links, the session and CSRF, over HTTP (Starlette's test client), on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from bot.clock import SimulatedClock
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Identity
from bot.web.app import create_app
from bot.web.auth import SIGNIN, issue_token

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


def _setup(engine: Engine) -> tuple[TestClient, SimulatedClock, str]:
    clock = SimulatedClock(NOW)
    with session_scope(engine) as session:
        identity = Identity(name="张敏", created_at=NOW)
        session.add(identity)
        session.flush()
        assert identity.id is not None
        token = issue_token(
            session, identity_id=identity.id, kind=SIGNIN, now=NOW, ttl=timedelta(minutes=15)
        )
    app = create_app(Settings(web_secret="test-secret"), engine=engine, clock=clock)
    return TestClient(app), clock, token


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_link_signs_in_once_and_posts_need_the_csrf_token(engine: Engine) -> None:
    client, _clock, token = _setup(engine)
    assert "登录" in client.get("/").text
    assert client.get("/ledger", follow_redirects=False).status_code == 303
    form = client.get(f"/login/{token}")
    assert form.status_code == 200
    assert client.post(f"/login/{token}").status_code == 403  # no CSRF token
    assert client.post(f"/login/{token}", data={"csrf": "forged"}).status_code == 403
    signed = client.post(f"/login/{token}", data={"csrf": _csrf(form.text)}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/ledger"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie
    assert "张敏" in client.get("/ledger").text
    assert client.get("/s/someone-elses-list").status_code == 403
    again = client.post(f"/login/{token}", data={"csrf": _csrf(client.get("/ledger").text)})
    assert again.status_code == 403  # single use


def test_forged_and_expired_links_are_refused(engine: Engine) -> None:
    client, clock, token = _setup(engine)
    assert client.get("/login/not-a-token").status_code == 403
    clock.advance(timedelta(minutes=16))
    assert client.get(f"/login/{token}").status_code == 403
