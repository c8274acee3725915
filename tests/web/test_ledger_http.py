"""The ledger over HTTP (SQLite and PostgreSQL): the export is byte for byte what
``dutybot report`` writes; who may see, export, decide and nudge; 催办 goes through the domain
with the audit channel ``web``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import select

from bot import replies
from bot.clock import SimulatedClock
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Notification, Occurrence, Reply, Task
from bot.web.app import create_app
from tests.conftest import ROOT, local
from tests.web.helpers import csrf_of, seed_list, signed_in, signin_link

NOW = local(2022, 6, 27, 10, 0)
LIST = "fengdu-ndrc-2022"


def _task_id(engine: Engine, ref: str) -> int:
    with session_scope(engine) as session:
        task = session.exec(select(Task).where(Task.ref == ref)).one()
        assert task.id is not None
        return task.id


def _cli_report(db_url: str, fmt: str, out: Path, *extra: str) -> bytes:
    env = {**os.environ, "DUTYBOT_DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "report",
            "--format",
            fmt,
            "--schedule",
            LIST,
            "-o",
            str(out),
            "--now",
            "2022-06-27T10:00:00",
            *extra,
        ],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    return out.read_bytes()


def test_the_export_is_what_dutybot_report_writes(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    seed_list(engine, NOW)
    client, _ = signed_in(engine, "办公室联络员", NOW)  # the list's admin
    csv = client.get(f"/s/{LIST}/export.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.content == _cli_report(db_url, "csv", tmp_path / "cli.csv")
    name = unquote(csv.headers["content-disposition"].split("UTF-8''")[1])
    assert name == f"台账-{LIST}-20220627.csv"
    xlsx = client.get(f"/s/{LIST}/export.xlsx")
    cli = _cli_report(db_url, "xlsx", tmp_path / "cli.xlsx", "--filled-by", "办公室联络员")
    web_book, cli_book = load_workbook(BytesIO(xlsx.content)), load_workbook(BytesIO(cli))
    assert web_book.sheetnames == cli_book.sheetnames
    for sheet in cli_book.sheetnames:
        cells = [[c.value for c in row] for row in cli_book[sheet].iter_rows()]
        assert [[c.value for c in row] for row in web_book[sheet].iter_rows()] == cells


def test_officials_see_their_own_items_and_cannot_export(engine: Engine) -> None:
    seed_list(engine, NOW)
    client, _ = signed_in(engine, "公管科联络员", NOW)
    board = client.get("/ledger").text
    refs = set(re.findall(r'data-ref="([^"]+)"', board))
    assert "25" in refs and "1" not in refs
    assert client.get(f"/s/{LIST}/export.csv").status_code == 403
    assert client.get(f"/s/{LIST}/t/{_task_id(engine, '1')}").status_code == 403
    assert client.get(f"/s/{LIST}/t/{_task_id(engine, '25')}").status_code == 200
    assert client.get(f"/s/other-list/t/{_task_id(engine, '25')}").status_code == 403


def test_only_the_lead_decides_and_a_leader_nudges_through_the_domain(engine: Engine) -> None:
    people = seed_list(engine, NOW)
    task = _task_id(engine, "25")
    with session_scope(engine) as session:
        occ = session.exec(select(Occurrence).where(Occurrence.task_id == task)).one()
        assert occ.id is not None
        reply = replies.request_extension(
            session,
            occurrence_id=occ.id,
            person_id=people["公管科联络员"],
            now=NOW,
            new_date=date(2022, 7, 29),
            reason=None,
        )
        reply_id = reply.id
    official, token = signed_in(engine, "公管科联络员", NOW)
    page = official.get(f"/s/{LIST}/t/{task}").text
    assert "button" in page and 'class="approve"' not in page and 'id="nudge"' not in page
    refused = official.post(
        f"/s/{LIST}/t/{task}/extension/{reply_id}", data={"csrf": token, "decision": "approve"}
    )
    assert "只有该任务的牵头领导可以审批延期" in refused.text
    nudged = official.post(f"/s/{LIST}/t/{task}/nudge", data={"csrf": token})
    assert "只有该任务的分管领导可以使用此功能" in nudged.text
    lead, lead_token = signed_in(engine, "熊伟", NOW)
    assert lead.post(f"/s/{LIST}/t/{task}/nudge", data={}).status_code == 403  # no CSRF
    done = lead.post(f"/s/{LIST}/t/{task}/nudge", data={"csrf": lead_token})
    assert "已催办" in done.text
    with session_scope(engine) as session:
        assert session.get(Reply, reply_id).decision is None  # type: ignore[union-attr]
        nudges = session.exec(select(Notification).where(Notification.kind == "nudge")).all()
        assert [n.person_id for n in nudges] == [people["公管科联络员"]]
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "nudge")).one()
        assert event.channel == "web" and event.person_id == people["熊伟"]


def _colour(html: str, ref: str) -> str:
    found = re.search(rf'<li class="task (\w+)" data-ref="{re.escape(ref)}">', html)
    assert found, ref
    return found.group(1)


def test_the_dashboard_follows_the_store_and_the_clock(engine: Engine) -> None:
    """Judgements are remembered per process: an answer given in chat, and the end of a due
    day, must still show at once."""
    people = seed_list(engine, NOW)
    clock = SimulatedClock(local(2022, 6, 30, 17, 0))  # task 25 is due today, 06-30
    app = create_app(Settings(web_secret="t"), engine=engine, clock=clock)
    client = TestClient(app)
    link = signin_link(engine, "办公室联络员", clock.now())
    client.post(link, data={"csrf": csrf_of(client.get(link).text)})
    assert _colour(client.get("/ledger").text, "25") == "yellow"
    clock.advance(local(2022, 6, 30, 18, 1) - clock.now())  # the working day is over
    assert _colour(client.get("/ledger").text, "25") == "red"
    with session_scope(engine) as session:
        occ = session.exec(
            select(Occurrence).where(Occurrence.task_id == _task_id(engine, "25"))
        ).one()
        assert occ.id is not None
        replies.complete(
            session,
            occurrence_id=occ.id,
            person_id=people["公管科联络员"],
            now=clock.now(),
            via=replies.Via("chat", "telegram"),
            note="已完成自查整改",
        )
    board = client.get("/ledger?q=资质").text
    row = board[board.index('data-ref="25"') :]
    assert _colour(board, "25") == "green", row[:400]
    assert "完成" in row[: row.index("</li>")], row[:400]


def test_the_timeline_shows_evidence_thumbnails_to_those_who_see_the_task(
    engine: Engine, tmp_path: Path
) -> None:
    people = seed_list(engine, NOW)
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    task = _task_id(engine, "25")
    with session_scope(engine) as session:
        occ = session.exec(select(Occurrence).where(Occurrence.task_id == task)).one()
        assert occ.id is not None
        replies.complete(
            session,
            occurrence_id=occ.id,
            person_id=people["公管科联络员"],
            now=NOW,
            via=replies.Via("chat", "telegram"),
            note="整改完成",
            evidence=[
                replies.EvidenceIn(
                    kind="photo",
                    file_name="现场.png",
                    mime_type="image/png",
                    local_path=str(photo),
                )
            ],
        )
    lead, _ = signed_in(engine, "熊伟", NOW)
    page = lead.get(f"/s/{LIST}/t/{task}").text
    found = re.search(rf'<img src="(/s/{LIST}/evidence/\d+)"', page)
    assert found and "报完成" in page and "整改完成" in page
    image = lead.get(found.group(1))
    assert image.status_code == 200 and image.content == photo.read_bytes()
    assert image.headers["content-type"] == "image/png"
    other, _ = signed_in(engine, "能源科联络员", NOW)  # not on task 25
    assert other.get(found.group(1)).status_code == 403
