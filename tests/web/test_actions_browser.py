"""In a real Chromium at phone width: an official opens a one-tap link, attaches a photo and
marks the item done; the store records it through the web channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import SimulatedClock
from bot.store.models import DONE, AuditEvent, Evidence, Occurrence, Person, Reply, Task
from bot.web.links import action_link
from tests.fakes.chat import REMIND_DAY, seed
from tests.web.conftest import serve

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_an_official_marks_done_with_a_photo_at_390_px(
    engine: Engine, browser: Any, tmp_path: Path
) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    with Session(engine) as session:
        zhang = session.exec(select(Person).where(Person.name == "张敏")).one()
        occ = session.exec(
            select(Occurrence)
            .join(Task, Task.id == Occurrence.task_id)  # type: ignore[arg-type]
            .where(Task.ref == "5")
        ).first()
    assert occ is not None and occ.id is not None and zhang.id is not None
    photo = tmp_path / "现场照片.png"
    photo.write_bytes(PNG)
    for served in serve(engine, clock, evidence_dir=str(tmp_path / "evidence")):
        link = action_link(
            served.app.state.settings,
            action="done",
            occurrence_id=occ.id,
            person_id=zhang.id,
            today=clock.now().date(),
        )
        page = browser.new_page(viewport={"width": 390, "height": 844})
        try:
            page.goto(link)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.set_input_files("input[name=evidence]", str(photo))
            page.fill("textarea[name=note]", "现场检查照片")
            page.click("#submit")
            page.wait_for_selector("#done")
            assert "已办结" in page.content()
        finally:
            page.close()
    with Session(engine) as session:
        row = session.get(Occurrence, occ.id)
        reply = session.exec(select(Reply).where(Reply.occurrence_id == occ.id)).one()
        evidence = session.exec(select(Evidence).where(Evidence.reply_id == reply.id)).one()
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "reply_done")).one()
    assert row is not None and row.status == DONE
    assert evidence.file_name == "现场照片.png" and evidence.mime_type == "image/png"
    assert Path(evidence.local_path or "").read_bytes() == PNG
    assert audit.channel == "web"
