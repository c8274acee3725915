"""Calendar feeds (/ics/<token>.ics) and one-tap action pages (/a/<signed>) over real HTTP
(uvicorn on a free port), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import httpx
from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot import replies
from bot.clock import SimulatedClock
from bot.replies import Via
from bot.store.db import session_scope
from bot.store.models import (
    DONE,
    AuditEvent,
    Evidence,
    Notification,
    Occurrence,
    Person,
    Reply,
    Task,
)
from bot.web.links import action_link, feed_link, link_signer, person_named, revoke_feeds
from tests.fakes.chat import REMIND_DAY, seed
from tests.web.conftest import serve

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _occurrence(engine: Engine, ref: str) -> Occurrence:
    with Session(engine) as session:
        found = session.exec(
            select(Occurrence)
            .join(Task, Task.id == Occurrence.task_id)  # type: ignore[arg-type]
            .where(Task.ref == ref)
            .order_by(Occurrence.due_date)  # type: ignore[arg-type]
        ).first()
    assert found is not None
    return found


def _person(engine: Engine, name: str) -> Person:
    with Session(engine) as session:
        return session.exec(select(Person).where(Person.name == name)).one()


def _events(body: bytes) -> dict[str, object]:
    """Summary → VEVENT of a feed."""
    calendar = Calendar.from_ical(body)
    return {str(e.get("summary")): e for e in calendar.walk("VEVENT")}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_a_feed_shows_open_items_with_alarms_completed_ones_and_can_be_revoked(
    engine: Engine,
) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    for served in serve(engine, clock):
        settings = served.app.state.settings
        with session_scope(engine) as session:
            url = feed_link(
                session, person=person_named(session, "张敏"), settings=settings, now=clock.now()
            )
        assert url.startswith(served.url + "/ics/") and url.endswith(".ics")
        with httpx.Client() as client:
            got = client.get(url)
            assert got.status_code == 200 and client.head(url).status_code == 200
            assert got.headers["content-type"].startswith("text/calendar")
            events = _events(got.content)
            four = next(e for s, e in events.items() if s.startswith("【督办】4 "))
            assert four.get("status") is None  # type: ignore[attr-defined]
            assert [a.get("action") for a in four.walk("VALARM")] == ["DISPLAY"]  # type: ignore[attr-defined]

            occ = _occurrence(engine, "4")
            with session_scope(engine) as session:
                assert occ.id is not None
                replies.complete(
                    session,
                    occurrence_id=occ.id,
                    person_id=_person(engine, "张敏").id or 0,
                    now=clock.now(),
                    via=Via("chat", "telegram"),
                    note="已召开专题会",
                )
            four = next(
                e for s, e in _events(client.get(url).content).items() if s.startswith("【督办】4 ")
            )
            assert str(four.get("status")) == "COMPLETED"  # type: ignore[attr-defined]
            assert not four.walk("VALARM")  # type: ignore[attr-defined]

            with session_scope(engine) as session:  # a new URL ends the old one
                newer = feed_link(
                    session,
                    person=person_named(session, "张敏"),
                    settings=settings,
                    now=clock.now(),
                )
            assert client.get(url).status_code == 404
            assert client.get(newer).status_code == 200
            with session_scope(engine) as session:
                identity = _person(engine, "张敏").identity_id
                assert identity is not None
                assert revoke_feeds(session, identity_id=identity, now=clock.now()) == 1
            assert client.get(newer).status_code == 404
            assert client.get(served.url + "/ics/made-up.ics").status_code == 404


def test_an_action_page_marks_done_with_a_photo_through_the_domain(
    engine: Engine, tmp_path: Path
) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    occ = _occurrence(engine, "5")  # evidence required
    zhang, li = _person(engine, "张敏"), _person(engine, "李强")
    assert occ.id is not None and zhang.id is not None and li.id is not None
    for served in serve(engine, clock, evidence_dir=str(tmp_path)):
        settings = served.app.state.settings
        today = clock.now().date()
        link = action_link(
            settings, action="done", occurrence_id=occ.id, person_id=zhang.id, today=today
        )
        with httpx.Client() as client:
            form = client.get(link)
            assert (
                form.status_code == 200
                and "确认办结" in form.text
                and "开展安全生产大检查" in form.text
            )
            token = _csrf(form.text)
            assert client.post(link, data={"note": "x"}).status_code == 403  # no CSRF token
            bare = client.post(link, data={"csrf": token, "note": ""})
            assert bare.status_code == 422 and "佐证材料" in bare.text  # required, none given
            with Session(engine) as session:
                assert session.get(Occurrence, occ.id).status != DONE  # type: ignore[union-attr]

            done = client.post(
                link,
                data={"csrf": token, "note": "检查记录见照片"},
                files={"evidence": ("现场.png", PNG, "image/png")},
            )
            assert done.status_code == 200 and "已办结" in done.text
            again = client.get(link)
            assert again.status_code == 409 and "已办结或已取消" in again.text

            # someone else's link for the same item, a forged and an expired link
            other = action_link(
                settings, action="done", occurrence_id=occ.id, person_id=li.id, today=today
            )
            assert client.get(other).status_code == 409
            forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
            assert client.get(forged).status_code == 403
            stale = link_signer(settings).sign_link("done", occ.id, zhang.id, date(2022, 1, 1))
            expired = client.get(f"{served.url}/a/{stale}")
            assert expired.status_code == 403 and "已过期" in expired.text

    with Session(engine) as session:
        row = session.get(Occurrence, occ.id)
        assert row is not None and row.status == DONE
        reply = session.exec(select(Reply).where(Reply.occurrence_id == occ.id)).one()
        evidence = session.exec(select(Evidence).where(Evidence.reply_id == reply.id)).one()
        audit = session.exec(
            select(AuditEvent).where(
                AuditEvent.occurrence_id == occ.id, AuditEvent.action == "reply_done"
            )
        ).one()
    assert reply.note == "检查记录见照片" and evidence.kind == "photo"
    assert evidence.local_path and Path(evidence.local_path).read_bytes() == PNG
    assert audit.channel == "web" and audit.person_id == zhang.id


def test_progress_and_extension_pages(engine: Engine) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    occ = _occurrence(engine, "4")
    zhang, xiong = _person(engine, "张敏"), _person(engine, "熊伟")
    assert occ.id is not None and zhang.id is not None
    for served in serve(engine, clock):
        settings = served.app.state.settings
        today = clock.now().date()

        links = {
            action: action_link(
                settings, action=action, occurrence_id=occ.id, person_id=zhang.id, today=today
            )
            for action in ("progress", "extend")
        }
        with httpx.Client() as client:
            page = client.get(links["progress"])
            token = _csrf(page.text)
            bad = client.post(
                links["progress"], data={"csrf": token, "note": "过半", "percent": "150"}
            )
            assert bad.status_code == 422 and "0 到 100" in bad.text
            ok = client.post(
                links["progress"], data={"csrf": token, "note": "已完成过半", "percent": "60"}
            )
            assert ok.status_code == 200 and "进展已记录" in ok.text

            client.get(links["extend"])
            early = client.post(links["extend"], data={"csrf": token, "new_date": "2022-06-01"})
            assert early.status_code == 422 and "晚于当前时限" in early.text
            later = (occ.due_date + timedelta(days=20)).isoformat()
            asked = client.post(
                links["extend"], data={"csrf": token, "new_date": later, "note": "等待上级文件"}
            )
            assert asked.status_code == 200 and "延期申请已提交" in asked.text

    with Session(engine) as session:
        kinds = {
            (r.kind, r.percent, r.requested_date)
            for r in session.exec(select(Reply).where(Reply.occurrence_id == occ.id))
        }
        told = session.exec(
            select(Notification).where(Notification.kind == "extension_request")
        ).all()
        channels = {
            a.channel
            for a in session.exec(select(AuditEvent).where(AuditEvent.occurrence_id == occ.id))
        }
    assert ("progress", 60, None) in kinds
    assert ("extension", None, date.fromisoformat(later)) in kinds
    assert [n.person_id for n in told] == [xiong.id]
    assert channels == {"web"}
