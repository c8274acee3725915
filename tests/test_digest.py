"""督办汇总: the digest text for a seeded scenario, the weekly summary, and silence when empty."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot import digest as digests
from bot.adapters.base import RecordingAdapter
from bot.adapters.console import plain
from bot.calendar import WorkCalendar
from bot.clock import SimulatedClock
from bot.outbox import gather_all
from bot.replies import complete
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import Notification, Occurrence, Person, Task
from tests.conftest import SCHEDULES, local
from tests.fakes.outbox import named_worker

CAL = WorkCalendar("cn")


def item(
    ref: str,
    due: date,
    *,
    unit: str = "能源科",
    status: str = "open",
    done: date | None = None,
    level: str = "blue",
    routine: bool = False,
) -> digests.Item:
    return digests.Item(
        int(ref.replace(".", "")),
        int(ref.split(".")[0]),
        ref,
        f"任务{ref}",
        unit,
        due,
        status,
        level,
        0,
        1,
        done,
        routine,
    )


def test_build_groups_overdue_by_unit_most_overdue_first() -> None:
    today = date(2022, 6, 8)
    built = digests.build(
        [
            item("1", date(2022, 5, 31), level="yellow"),
            item("2", date(2022, 6, 1), unit="办公室"),
            item("3", date(2022, 5, 20), unit="办公室", level="red"),
            item("4", date(2022, 6, 10)),  # due within 3 working days
            item("5", date(2022, 6, 20)),  # not yet
            item(
                "6", date(2022, 6, 2), status="done", done=date(2022, 6, 7)
            ),  # completed since last digest
            item("7", date(2022, 6, 2), status="done", done=date(2022, 6, 1)),  # completed long ago
            item("8", date(2022, 6, 9), routine=True),  # a daily duty: not listed as due soon
        ],
        today=today,
        since=date(2022, 6, 7),
        cal=CAL,
    )
    assert list(built.overdue) == ["办公室", "能源科"]  # the unit with the oldest item first
    assert [(r["ref"], r["overdue_days"]) for r in built.overdue["办公室"]] == [("3", 12), ("2", 4)]
    assert [(r["ref"], r["overdue_days"]) for r in built.overdue["能源科"]] == [
        ("1", 5)
    ]  # 06-03 holiday
    assert [r["ref"] for r in built.due_soon] == ["4"]
    assert [r["ref"] for r in built.completed] == ["6"]
    assert not built.empty


def test_nothing_to_say_is_empty() -> None:
    built = digests.build(
        [item("5", date(2022, 6, 20))], today=date(2022, 6, 8), since=date(2022, 6, 7), cal=CAL
    )
    assert built.empty


def test_weekly_completion_rate_per_unit() -> None:
    week = [
        item("1", date(2022, 6, 6), status="done", done=date(2022, 6, 6)),
        item("2", date(2022, 6, 8)),
        item("3", date(2022, 6, 9), unit="办公室", status="done", done=date(2022, 6, 9)),
    ]
    built = digests.build(
        [], today=date(2022, 6, 13), since=date(2022, 6, 10), cal=CAL, weekly=week
    )
    assert built.weekly == [
        {"unit": "办公室", "done": 1, "total": 1, "rate": 100},
        {"unit": "能源科", "done": 1, "total": 2, "rate": 50},
    ]


def _run_digests(engine: Engine, when: tuple[int, ...], scenario: bool) -> dict[str, str]:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    clock = SimulatedClock(local(2022, 5, 23, 8, 0))
    with session_scope(engine) as session:
        import_schedule(session, spec, now=clock.now(), horizon_days=62)
    if scenario:
        with session_scope(
            engine
        ) as session:  # task 1 done on 06-07; the rest of the 05-31 batch is late
            occ = session.exec(select(Occurrence).join(Task).where(Task.ref == "1")).one()
            who = session.exec(select(Person).where(Person.name == "能源科联络员")).one()
            assert occ.id is not None and who.id is not None
            complete(
                session,
                occurrence_id=occ.id,
                person_id=who.id,
                now=local(2022, 6, 7, 15, 0),
                note="已建立",
            )
    clock.set(local(*when))
    adapter = RecordingAdapter()
    worker = named_worker(engine, adapter, clock)
    worker.engine.plan_digests(clock.now())
    gather_all(lambda: session_scope(engine), clock.now(), platforms=["memory"], ahead=timedelta(0))
    asyncio.run(worker.dispatcher.drain())
    return {m.chat_id: plain(m.text) for m in adapter.sent if "督办汇总" in m.text}


def test_rendered_digest_for_a_seeded_scenario(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 6, 8, 8, 30), scenario=True)
    assert set(sent) >= {"邓清华", "熊伟", "李道波"}
    xiong = sent["熊伟"]
    assert (
        xiong.splitlines()[0]
        == "📋 督办汇总｜丰都县发展改革委落实安全生产“十五条硬措施”责任清单｜2022-06-08"
    )
    assert "逾期未办" in xiong and "【能源科】" in xiong
    lines = xiong.splitlines()
    # 熊伟 leads task 6 (due 05-31): 5 working days late on 06-08, because 06-03 was a holiday
    assert any(
        line.startswith("🔵 6. ") and line.endswith("（2022-05-31 到期，逾期 5 个工作日）")
        for line in lines
    )
    assert not any(
        line.startswith("🔵 4. ") for line in lines
    )  # he is only responsible for 4, not lead
    daily = [line for line in lines if line.startswith("🔵 7.1. ")]
    assert len(daily) == 1 and "期未完成" in daily[0], (
        xiong
    )  # a daily duty shows once, with its count
    assert "35. " in xiong and "3 个工作日内到期" in xiong
    chief = sent["邓清华"]
    assert "（全部事项）" in chief and "上次汇总以来已完成 1 项" in chief
    assert "✅ 1. " in chief and "（2022-06-07）" in chief
    # 李道波 co-leads the daily 7.1 nobody did in this scenario: one line, with the count of days missed
    li = [line for line in sent["李道波"].splitlines() if line.startswith("🔵 7.1. ")]
    assert li == [
        "🔵 7.1. 监管人员检查工作日开展执法（2022-05-23 到期，逾期 11 个工作日，共 11 期未完成）"
    ]


def test_weekly_summary_on_the_first_working_day(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 6, 13, 8, 30), scenario=True)  # a Monday
    assert "上周各单位完成率" in sent["邓清华"]


def test_no_digest_when_there_is_nothing_to_say(engine: Engine) -> None:
    # a holiday: no digest at all
    assert _run_digests(engine, (2022, 6, 3, 8, 30), scenario=False) == {}
    with Session(engine) as session:
        assert not session.exec(select(Notification).where(Notification.kind == "digest")).all()


def test_a_leader_with_nothing_due_gets_nothing(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 5, 24, 8, 30), scenario=False)
    assert "朱俊" not in sent  # leads only 12-31 items: nothing to say, nothing sent
    assert "熊伟" in sent
