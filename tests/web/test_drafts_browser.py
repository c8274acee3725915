"""Load a list in a real Chromium at 390 px: seed 000 as a Word document → review beside
its source lines → a wrong owner refused at its field, then fixed → preview → apply → the
dashboard shows the new list (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.clock import SimulatedClock
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Draft, Person, Schedule
from tests.conftest import local
from tests.web.conftest import Served, serve
from tests.web.helpers import phone_page, seed_list

SEED = Path("/work/shared/seeds/000_69e34481b734bfda.txt")
NOW = local(2022, 5, 25, 10, 0)


def seed_docx(folder: Path) -> Path:
    """Seed 000 (kept as text) as the Word document an office would upload."""
    document = docx.Document()
    for line in SEED.read_text(encoding="utf-8").splitlines():
        document.add_paragraph(line)
    path = folder / "seed000.docx"
    document.save(str(path))
    return path


@pytest.fixture
def web(engine: Engine) -> Iterator[Served]:
    if not SEED.exists():
        pytest.skip(f"seed 000 not found at {SEED}")
    seed_list(engine, NOW)  # 办公室联络员 is the admin of fengdu-ndrc-2022
    yield from serve(engine, SimulatedClock(NOW))


def _card(page: Any, ref: str) -> Any:
    return page.locator(f'.draft-task[data-ref="{ref}"]')


def test_upload_review_fix_apply_and_see_it(web: Served, browser: Any, tmp_path: Path) -> None:
    with phone_page(browser, web, "办公室联络员", NOW, timeout=20000) as page:
        page.click("#load-list")
        page.set_input_files("#file", str(seed_docx(tmp_path)))
        page.click("#upload")
        page.wait_for_url("**/drafts/*")
        # a task whose responsible is a group (各党组成员), not a person: the one to fix
        ref = page.evaluate(
            """[...document.querySelectorAll('.draft-task')].find(c =>
                c.querySelector('input[name=responsible]').value.includes('各党组成员')
            ).dataset.ref"""
        )
        card = _card(page, ref)
        assert "第" in card.locator(".source").inner_text()  # beside its source lines
        assert "uncertain" in (card.get_attribute("class") or "")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        card.locator("input[name=responsible]").fill("无此人")
        card.locator("button").click()
        page.wait_for_selector(f'.draft-task[data-ref="{ref}"] label.error .field-error')
        assert card.locator("input[name=responsible]").input_value() == "无此人"
        card.locator("input[name=responsible]").fill("熊伟")
        card.locator("button").click()
        page.wait_for_selector(f'.draft-task[data-ref="{ref}"] .notice')
        page.screenshot(path="/tmp/dutybot-draft-390.png", full_page=False)

        page.click("#preview")
        page.wait_for_selector("#diff")
        assert "已新建清单 seed000" in page.locator("#diff").inner_text()
        assert "下一个发送时段" in page.locator("#forecast").inner_text()  # who hears first
        page.click("#apply-draft")
        page.wait_for_url("**/s/seed000?imported=1")
        assert "清单已导入" in page.content()
        page.fill("#q", ref)
        page.wait_for_function("document.querySelectorAll('li.task').length < 20")
        page.locator(f'li.task[data-ref="{ref}"] a').click()
        page.wait_for_url("**/t/*")
        facts = page.locator("dl").inner_text()
        assert "熊伟" in facts and "各党组成员" not in facts
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    with session_scope(web.engine) as session:
        assert session.get(Schedule, "seed000") is not None
        draft = session.exec(select(Draft)).one()
        assert draft.state == "applied" and draft.source_name == "seed000.docx"
        admin = session.exec(
            select(Person).where(Person.schedule_id == "seed000", Person.name == "办公室联络员")
        ).one()
        assert admin.admin
        channels = {
            e.action: e.channel
            for e in session.exec(select(AuditEvent).where(AuditEvent.action.startswith("draft_")))  # type: ignore[attr-defined]
        }
        assert channels == {"draft_created": "web", "draft_edited": "web", "draft_applied": "web"}
