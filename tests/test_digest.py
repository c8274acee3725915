"""督办汇总: the digest text for a seeded scenario, the weekly summary, and silence when empty."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot import digest as digests
from bot.adapters.base import RecordingAdapter
from bot.calendar import WorkCalendar
from bot.clock import SimulatedClock
from bot.messages import compose, plain_text
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
    return {m.chat_id: plain_text(m.message) for m in adapter.sent if m.message.kind == "digest"}


def test_rendered_digest_for_a_seeded_scenario(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 6, 8, 8, 30), scenario=True)
    assert set(sent) >= {"邓清华", "熊伟", "李道波"}
    xiong = sent["熊伟"]
    lines = xiong.splitlines()
    assert lines[0] == "📋 督办汇总｜丰都县发展改革委落实安全生产“十五条硬措施”责任清单｜2022-06-08"
    assert "逾期未办 5 项：🔵 5" in lines and "按单位：能源科 5" in lines
    # 熊伟 leads task 6 (due 05-31): 5 working days late on 06-08, because 06-03 was a holiday
    assert "🔵 6. 编制科室安全生产权力和责任清单，公开接…（逾期 5 个工作日）" in lines
    assert not any(line.startswith("🔵 4. ") for line in lines)  # responsible for 4, not lead
    daily = [line for line in lines if line.startswith("🔵 7.1. ")]
    assert daily == ["🔵 7.1. 监管人员检查工作日开展执法（逾期 11 个工作日，共 11 期未完成）"]
    # the weekly 7.2 is late and due again: listed once, as late
    assert [line for line in lines if line.startswith("🔵 7.2. ")] == [
        "🔵 7.2. 分管负责人每周调度推动执法（逾期 7 个工作日，共 2 期未完成）"
    ]
    assert "35. " in xiong and "3 个工作日内到期" in xiong
    chief = sent["邓清华"]
    assert "（全部事项）" in chief and "上次汇总以来已完成 1 项" in chief
    assert "按单位：能源科 10 · 办公室 2 · 各监管企业 2" in chief.splitlines()
    assert chief.splitlines()[-1] == "另有 8 项逾期未列出，发送 /digest 全部 查看。"
    # 李道波 co-leads the daily 7.1 nobody did in this scenario: one line, with the count of days missed
    li = [line for line in sent["李道波"].splitlines() if line.startswith("🔵 7.1. ")]
    assert li == ["🔵 7.1. 监管人员检查工作日开展执法（逾期 11 个工作日，共 11 期未完成）"]


def test_a_digest_fits_one_phone_screen(engine: Engine) -> None:
    """Issue 12.4: a month into an unanswered list, on a Monday (the weekly line too)."""
    sent = _run_digests(engine, (2022, 7, 4, 8, 30), scenario=True)
    chief = sent["邓清华"].splitlines()
    assert len(chief) <= 15, "\n".join(chief)
    assert chief[2] == "逾期未办 21 项：🔵 21"
    assert chief[3].startswith("按单位：能源科 12 · ") and "其余 2 个单位" in chief[3]
    assert chief[4].startswith("上周完成率 ")
    listed = [line.split(". ")[0].removeprefix("🔵 ") for line in chief if line.startswith("🔵")]
    assert listed == ["35", "7.1", "7.2", "50.1", "4", "5.1"]  # most overdue; 7.2 < 50.1
    assert chief[-1] == "另有 15 项逾期未列出，发送 /digest 全部 查看。"
    assert all(len(line) <= 60 for line in chief[1:])  # no item line wraps past two phone lines


def test_every_section_at_once_still_fits() -> None:
    """The worst case: every summary line, more units and items than fit, the 另有 N 项 line."""
    today = date(2022, 6, 13)  # a Monday: last week's rate too
    overdue = [item(str(n), date(2022, 5, 20), unit=f"科室{n % 5}") for n in range(1, 40)]
    soon = [item(f"{n}.1", date(2022, 6, 14)) for n in range(1, 5)]
    done = [item("50", date(2022, 6, 9), status="done", done=date(2022, 6, 10))]
    week = [item("60", date(2022, 6, 8), unit="甲"), item("61", date(2022, 6, 8), unit="乙",
            status="done", done=date(2022, 6, 8))]  # fmt: skip
    built = digests.build(overdue + soon + done, today=today, since=date(2022, 6, 10), cal=CAL,
                          weekly=week)  # fmt: skip
    payload = {"schedule": "清单" * 10, "date": today.isoformat(), "whole": True}
    for lang in ("zh-CN", "en"):
        message = compose("digest", [{**payload, **built.as_payload()}], person="邓清华", lang=lang)
        lines = plain_text(message).splitlines()
        assert len(lines) <= 15 and len(message.body) == 4 and message.footer, lines


def test_screen_counts_levels_and_units_and_sorts_task_numbers() -> None:
    today = date(2022, 6, 20)
    items = [item(ref, date(2022, 6, 1), level=level, unit=unit) for ref, level, unit in (
        ("50.1", "blue", "甲"), ("7.2", "blue", "乙"), ("7.10", "red", "甲"), ("13", "yellow", "丙"),
        ("2", "blue", "丁"), ("3", "blue", "戊"),
    )]  # fmt: skip
    payload = digests.build(items, today=today, since=today, cal=CAL).as_payload()
    shown = digests.screen(payload, limit=4)
    assert [r["ref"] for r in shown["shown"]] == ["7.10", "13", "2", "3"]  # severity, then 2 < 3
    assert shown["levels"] == [("red", 1), ("yellow", 1), ("blue", 4)]
    assert shown["units"] == [("甲", 2), ("丁", 1), ("丙", 1)]
    assert (shown["other_units"], shown["other_items"], shown["rest"]) == (2, 2, 2)
    everything = digests.screen({**payload, "full": True}, limit=4)
    assert [r["ref"] for r in everything["shown"]][2:] == ["2", "3", "7.2", "50.1"]
    assert everything["rest"] == 0
    assert sorted(["50.1", "7.2", "13.10", "13.2"], key=digests.ref_key) == [
        "7.2",
        "13.2",
        "13.10",
        "50.1",
    ]


def test_the_rest_is_a_link_when_the_payload_carries_one() -> None:
    today = date(2022, 6, 20)
    items = [item(str(n), date(2022, 6, 1)) for n in range(1, 12)]
    payload = {
        "schedule": "清单", "date": today.isoformat(), "whole": True,
        "link": "https://duty.example/overdue",
        **digests.build(items, today=today, since=today, cal=CAL).as_payload(),
    }  # fmt: skip
    for lang, words in (("zh-CN", "另有 5 项逾期未列出，查看全部："), ("en", "5 more overdue")):
        message = compose("digest", [payload], person="邓清华", lang=lang)
        text = plain_text(message)
        assert words in text and text.endswith("https://duty.example/overdue")
        nudges = [b for item in message.items for b in item.actions]
        assert [b.action for b in nudges] == ["nudge"] * 5  # the five most overdue


def test_weekly_summary_on_the_first_working_day(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 6, 13, 8, 30), scenario=True)  # a Monday
    assert "上周完成率 0%（0/7）" in sent["邓清华"].splitlines()


def test_no_digest_when_there_is_nothing_to_say(engine: Engine) -> None:
    # a holiday: no digest at all
    assert _run_digests(engine, (2022, 6, 3, 8, 30), scenario=False) == {}
    with Session(engine) as session:
        assert not session.exec(select(Notification).where(Notification.kind == "digest")).all()


def test_a_leader_with_nothing_due_gets_nothing(engine: Engine) -> None:
    sent = _run_digests(engine, (2022, 5, 24, 8, 30), scenario=False)
    assert "朱俊" not in sent  # leads only 12-31 items: nothing to say, nothing sent
    assert "熊伟" in sent
