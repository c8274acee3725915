"""``due: 待定`` (no deadline yet) and ``deadline_text``: validated, imported, never chased.

Store tests run on SQLite and PostgreSQL through the ``engine`` fixture.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.cli import app
from bot.materialise import materialise
from bot.schedule.format import PENDING, ScheduleFile
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import CANCELLED, OPEN, Occurrence, Schedule, Task
from tests.conftest import local

T0 = local(2022, 5, 23, 9, 0)

LIST = """\
schedule: undated
title: 时限待定的清单
issued_on: 2022-05-23
people:
  熊伟: {title: 副主任}
units:
  办公室: {contacts: [熊伟]}
tasks:
  - {ref: "1", title: 有期限, units: [办公室], due: 2022-06-30, deadline_text: 6月底前}
  - {ref: "2", title: 待定, units: [办公室], due: 待定}
  - {ref: "3", title: 待定英文, units: [办公室], due: TBD, deadline_text: 另行通知}
  - {ref: "4", title: 长期, units: [办公室], ongoing: true, deadline_text: 长期坚持}
"""


def _spec(text: str) -> ScheduleFile:
    loaded = load_schedule("list.yaml", text=text)
    assert loaded.ok and loaded.spec is not None, [str(p) for p in loaded.problems]
    return loaded.spec


def _import(engine: Engine, text: str, now=T0) -> None:
    with session_scope(engine) as session:
        import_schedule(session, _spec(text), now=now, horizon_days=62)


def _task(session: Session, ref: str) -> Task:
    return session.exec(select(Task).where(Task.schedule_id == "undated", Task.ref == ref)).one()


def _occurrences(session: Session, ref: str) -> list[Occurrence]:
    task = _task(session, ref)
    return list(session.exec(select(Occurrence).where(Occurrence.task_id == task.id)))


@pytest.mark.parametrize("word", ["待定", "pending", "Pending", "TBD", " tbd "])
def test_the_words_for_no_deadline_yet(word: str) -> None:
    spec = _spec(LIST.replace("due: 待定}", f'due: "{word}"}}'))
    task = spec.tasks[1]
    assert task.due == PENDING and task.undated and task.kind == "undated"
    assert task.due_date is None


def test_validate_warns_per_undated_task_with_its_position() -> None:
    loaded = load_schedule("list.yaml", text=LIST)
    assert loaded.ok
    warnings = [p for p in loaded.warnings if "待定" in p.message]
    assert [(p.line, p.column) for p in warnings] == [(10, 46), (11, 48)]
    assert all(str(p).startswith("list.yaml:1") for p in warnings)
    assert "任务 2" in warnings[0].message and "不会提醒" in warnings[0].message


def test_exactly_one_timing_still_holds() -> None:
    both = LIST.replace("due: 待定}", "due: 待定, ongoing: true}")
    loaded = load_schedule("list.yaml", text=both)
    assert not loaded.ok
    assert any(p.line == 10 for p in loaded.errors)
    bad = load_schedule("list.yaml", text=LIST.replace("due: 待定}", "due: 下个月}"))
    [error] = bad.errors
    assert (error.line, "下个月" in error.message) == (10, True)


def test_cli_validate_warns_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(LIST, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:10:46: 警告：任务 2 的完成时限待定" in result.output
    assert "Traceback" not in result.output


def test_import_stores_kind_and_wording_and_makes_no_occurrence(engine: Engine) -> None:
    _import(engine, LIST)
    with Session(engine) as session:
        dated, pending, tbd, ongoing = (_task(session, r) for r in ("1", "2", "3", "4"))
        assert (dated.kind, pending.kind, tbd.kind, ongoing.kind) == (
            "deadline",
            "undated",
            "undated",
            "ongoing",
        )
        assert pending.due is None
        assert (dated.spec or {}).get("deadline_text") == "6月底前"
        assert (pending.spec or {}).get("due") == "待定"
        assert (pending.spec or {}).get("deadline_text") is None
        assert (tbd.spec or {}).get("deadline_text") == "另行通知"
        assert (ongoing.spec or {}).get("deadline_text") == "长期坚持"
        assert _occurrences(session, "2") == [] and _occurrences(session, "3") == []
        assert len(_occurrences(session, "1")) == 1
        assert len(_occurrences(session, "4")) >= 1  # ongoing still asks for progress


def test_an_undated_task_stays_quiet_across_materialising(engine: Engine) -> None:
    _import(engine, LIST)
    with session_scope(engine) as session:
        schedule = session.get(Schedule, "undated")
        assert schedule is not None
        materialise(session, schedule, now=local(2022, 9, 1, 9, 0), horizon_days=62)
    with Session(engine) as session:
        assert _occurrences(session, "2") == []


def test_setting_a_date_later_starts_chasing_and_removing_it_stops(engine: Engine) -> None:
    _import(engine, LIST)
    dated = LIST.replace("due: 待定}", "due: 2022-07-15}")
    _import(engine, dated, now=local(2022, 6, 1, 9, 0))
    with Session(engine) as session:
        [occurrence] = _occurrences(session, "2")
        assert occurrence.due_date == date(2022, 7, 15) and occurrence.status == OPEN
        assert _task(session, "2").kind == "deadline"
    _import(engine, LIST, now=local(2022, 6, 2, 9, 0))  # back to 待定: nothing left to chase
    with Session(engine) as session:
        [occurrence] = _occurrences(session, "2")
        assert occurrence.status == CANCELLED
        assert _task(session, "2").kind == "undated"


def test_json_schema_offers_the_pending_words() -> None:
    from bot.schedule.format import json_schema

    due = json_schema()["$defs"]["TaskSpec"]["properties"]["due"]
    assert {"type": "string", "enum": ["待定", "pending", "tbd"]} in due["anyOf"]
    assert "deadline_text" in json_schema()["$defs"]["TaskSpec"]["properties"]
