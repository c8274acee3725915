"""The audit export: every event, times on the schedule's wall clock, names not ids."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.reports.audit import audit_headers, audit_rows, load_audit
from bot.reports.records import UnknownSchedule
from bot.reports.writers import write_csv
from bot.store.db import session_scope
from bot.store.models import AuditEvent
from tests.conftest import local
from tests.test_reports_scenario import SCHEDULE, import_second_list, seed_scenario

HEADERS = ["时间", "操作者", "事件", "清单", "任务编号", "任务实例", "详情"]


def export(engine: Engine, path: Path, **kwargs: object) -> list[dict[str, str]]:
    with session_scope(engine) as session:
        data = load_audit(session, **kwargs)  # type: ignore[arg-type]
    write_csv(path, audit_headers("zh-CN"), audit_rows(data, "zh-CN"))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel needs the BOM for Chinese
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == HEADERS
    return [dict(zip(HEADERS, row, strict=True)) for row in rows[1:]]


def test_every_event_in_shanghai_time(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    rows = export(engine, tmp_path / "audit.csv")
    with session_scope(engine) as session:
        total = len(session.exec(select(AuditEvent)).all())
    assert len(rows) == total == 10
    first = rows[0]
    # imported at 2022-05-23 09:00 Asia/Shanghai, stored as 01:00 UTC
    assert first["时间"] == "2022-05-23 09:00:00"
    assert first["操作者"] == "命令行（管理员）"
    assert first["事件"] == "导入清单"
    assert first["清单"] == SCHEDULE
    assert "新增任务实例：" in first["详情"]
    assert [r["时间"] for r in rows] == sorted(r["时间"] for r in rows)


def test_reply_rows_name_person_task_and_occurrence(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    rows = export(engine, tmp_path / "audit.csv")
    done = next(r for r in rows if r["任务编号"] == "1")
    assert done["时间"] == "2022-05-30 15:00:00"
    assert done["操作者"] == "办公室联络员"
    assert done["事件"] == "报完成"
    assert done["任务实例"] == "截止2022-05-31"
    assert "对象" not in done["详情"]  # the actor is the person concerned: said once
    assert "说明：已建立" in done["详情"]
    monthly = next(r for r in rows if r["任务编号"] == "13.1" and r["时间"].startswith("2022-06"))
    assert monthly["任务实例"] == "2022-06-01至2022-06-30（截止2022-06-30）"
    approved = next(r for r in rows if r["事件"] == "批准延期")
    assert approved["操作者"] == "熊伟" and approved["任务编号"] == "18.1"
    assert approved["时间"] == "2022-06-16 14:00:00"


def test_cancel_crossing_utc_midnight_keeps_its_local_day(engine: Engine, tmp_path: Path) -> None:
    """07:30 on 6-01 in Shanghai is 23:30 on 5-31 in UTC: the local day is what counts."""
    seed_scenario(engine)
    rows = export(engine, tmp_path / "audit.csv")
    cancelled = next(r for r in rows if r["事件"] == "取消任务实例")
    assert cancelled["时间"] == "2022-06-01 07:30:00"
    assert cancelled["任务编号"] == "6"
    assert "原因：管理员" in cancelled["详情"]
    since = export(engine, tmp_path / "since.csv", since=date(2022, 6, 1))
    assert since[0]["事件"] == "取消任务实例"
    assert all(r["时间"] >= "2022-06-01" for r in since)
    # cancel, 4's progress, 13.1's June completion, extension asked and approved
    assert len(since) == 5


def test_filter_by_schedule(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    import_second_list(engine, tmp_path)
    every = export(engine, tmp_path / "all.csv")
    assert {r["清单"] for r in every} == {SCHEDULE, "demo-town-2022"}
    other = export(engine, tmp_path / "demo.csv", schedule_id="demo-town-2022")
    assert [r["事件"] for r in other] == ["导入清单"]
    with session_scope(engine) as session, pytest.raises(UnknownSchedule):
        load_audit(session, schedule_id="no-such-list")


def test_unknown_action_is_shown_as_recorded(engine: Engine, tmp_path: Path) -> None:
    seed_scenario(engine)
    with session_scope(engine) as session:
        session.add(
            AuditEvent(
                at=local(2022, 6, 21, 8, 0),
                actor="system",
                action="something_new",
                schedule_id=SCHEDULE,
                detail={"level": "red", "created": True},
            )
        )
    rows = export(engine, tmp_path / "audit.csv")
    last = rows[-1]
    assert (last["事件"], last["操作者"]) == ("something_new", "系统")
    assert last["详情"] == "级别：红色；新建：是"


def test_details_read_in_the_schedules_language_and_time(engine: Engine, tmp_path: Path) -> None:
    """Message kinds in words, instants inside details on the local clock, no repeated 对象."""
    seeded = seed_scenario(engine)
    deng = seeded.people["邓清华"]
    with session_scope(engine) as session:
        session.add_all(
            [
                AuditEvent(
                    at=local(2022, 6, 21, 9, 0),
                    actor="cli",
                    action="invite_created",
                    schedule_id=SCHEDULE,
                    person_id=deng,
                    detail={
                        "person": "邓清华",
                        "invite": 7,
                        "expires_at": "2022-06-24T01:00:00+00:00",
                    },
                ),
                AuditEvent(
                    at=local(2022, 6, 21, 9, 5),
                    actor="system",
                    action="notification_sent",
                    schedule_id=SCHEDULE,
                    person_id=deng,
                    notification_id=12,
                    detail={"kind": "extension_request", "level": None},
                ),
            ]
        )
    rows = export(engine, tmp_path / "audit.csv")
    invite, sent = rows[-2], rows[-1]
    assert (invite["事件"], invite["操作者"]) == ("生成邀请", "命令行（管理员）")
    assert invite["详情"] == "对象：邓清华；邀请编号：7；有效期至：2022-06-24 09:00"
    assert "+00:00" not in invite["详情"]
    assert sent["详情"] == "对象：邓清华；消息编号：12；类型：延期申请"
    with session_scope(engine) as session:
        english = audit_rows(load_audit(session), "en")
    assert english[-1][2] == "message sent" and english[-1][6].endswith("kind: extension request")
    assert audit_headers("en")[:3] == ["Time", "Actor", "Event"]
