"""The audit trail in a real Chromium at 390 px, filtered by channel; its CSV is what
``dutybot audit`` writes (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot import replies
from bot.clock import SimulatedClock
from bot.store.db import session_scope
from bot.store.models import Occurrence, Task
from tests.conftest import ROOT, local
from tests.web.conftest import Served, serve
from tests.web.helpers import phone_page, seed_list, signed_in

NOW = local(2022, 6, 27, 10, 0)
LIST = "fengdu-ndrc-2022"


def _answers(engine: Engine, people: dict[str, int]) -> None:
    """An extension asked in chat, a 催办 from the web."""
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
            via=replies.Via("chat", "telegram"),
        )
        replies.nudge(
            session,
            occurrence_id=occ.id,
            person_id=people["熊伟"],
            now=NOW,
            via=replies.Via("web"),
        )


@pytest.fixture
def web(engine: Engine) -> Iterator[Served]:
    _answers(engine, seed_list(engine, NOW))
    yield from serve(engine, SimulatedClock(NOW))


def test_an_admin_filters_the_trail_by_channel(web: Served, browser: Any) -> None:
    with phone_page(browser, web, "办公室联络员", NOW) as page:
        page.click(f'a[href="/s/{LIST}/audit"]')
        page.wait_for_url(f"**/s/{LIST}/audit")
        everything = page.locator(".audit-row").count()
        assert "申请延期" in page.locator(".audit").inner_text()
        page.select_option("select[name=channel]", "web")
        page.wait_for_url("**channel=web*")
        rows = page.locator(".audit-row").all_inner_texts()
        assert 0 < len(rows) < everything
        assert all("领导催办" in row for row in rows)
        assert "channel=web" in (page.locator("#audit-csv").get_attribute("href") or "")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_audit_csv_is_what_dutybot_audit_writes(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    _answers(engine, seed_list(engine, NOW))
    client, _ = signed_in(engine, "办公室联络员", NOW)
    out = tmp_path / "cli.csv"
    env = {**os.environ, "DUTYBOT_DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN"}
    subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--schedule", LIST, "-o", str(out)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    assert client.get(f"/s/{LIST}/audit.csv").content == out.read_bytes()
    lead, _ = signed_in(engine, "熊伟", NOW)
    assert lead.get(f"/s/{LIST}/audit.csv").status_code == 403
