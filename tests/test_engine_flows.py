"""Engine flows across replies: an approved extension re-plans; 1 of 2 done still chases; pacing."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot import replies
from bot.adapters.base import RecordingAdapter
from bot.clock import SimulatedClock
from bot.engine import collector_paused
from bot.materialise import schedule_time
from bot.messages import plain_text
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.simulation import Timeline, run
from bot.store.db import session_scope
from bot.store.models import Notification, Occurrence, Person, Reply, Schedule, Task
from bot.worker import Worker
from tests.conftest import ROOT, SCHEDULES, SHANGHAI, local
from tests.fakes.outbox import named_worker


def setup(engine: Engine) -> tuple[Worker, SimulatedClock, RecordingAdapter, Timeline]:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    clock = SimulatedClock(local(2022, 5, 23, 8, 0))
    with session_scope(engine) as session:
        import_schedule(session, spec, now=clock.now(), horizon_days=62)
    adapter = RecordingAdapter()
    return (
        named_worker(engine, adapter, clock),
        clock,
        adapter,
        Timeline(),
    )


def ids(session: Session, ref: str, person: str, due: date | None = None) -> tuple[int, int]:
    query = select(Occurrence).join(Task).where(Task.ref == ref)
    if due:
        query = query.where(Occurrence.due_date == due)
    occ = session.exec(query.order_by(Occurrence.due_date)).first()
    who = session.exec(select(Person).where(Person.name == person)).one()
    assert occ is not None and occ.id is not None and who.id is not None
    return occ.id, who.id


def simulate(
    engine: Engine, worker: Worker, clock: SimulatedClock, timeline: Timeline, until: datetime
) -> None:
    with Session(engine) as session:
        schedule = session.exec(select(Schedule)).one()
        st = schedule_time(schedule)
    asyncio.run(run(worker, clock, st, until=until, timeline=timeline, every=timedelta(hours=10)))


def sent_for(engine: Engine, ref: str) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Notification, Person)
            .join(Person, col(Person.id) == Notification.person_id)
            .where(Notification.state == "sent")
            .order_by(Notification.sent_at)
        ).all()
        return [
            (n.sent_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"), p.name, n.kind)  # type: ignore[union-attr]
            for n, p in rows
            if (n.payload or {}).get("ref") == ref and n.kind != "digest"
        ]


def test_approved_extension_replans_the_ladder_from_the_new_date(engine: Engine) -> None:
    worker, clock, _adapter, timeline = setup(engine)

    def ask(now: datetime) -> None:
        with session_scope(engine) as session:
            occ, who = ids(session, "25", "公管科联络员")
            replies.request_extension(
                session,
                occurrence_id=occ,
                person_id=who,
                now=now,
                new_date=date(2022, 7, 29),
                reason="等待批复",
            )

    def approve(now: datetime) -> None:
        with session_scope(engine) as session:
            reply = session.exec(select(Reply).where(Reply.kind == "extension")).one()
            lead = session.exec(select(Person).where(Person.name == "熊伟")).one()
            assert reply.id is not None and lead.id is not None
            replies.decide_extension(
                session, reply_id=reply.id, person_id=lead.id, now=now, approve=True
            )

    timeline.at(local(2022, 6, 27, 10, 0), ask)
    timeline.at(local(2022, 6, 28, 9, 0), approve)
    simulate(engine, worker, clock, timeline, local(2022, 8, 3, 18, 0))
    assert sent_for(engine, "25") == [
        ("06-21 08:30", "公管科联络员", "reminder"),  # -7 working days before 06-30
        ("06-27 08:30", "公管科联络员", "reminder"),  # -3
        ("06-27 10:00", "熊伟", "extension_request"),
        ("06-28 09:00", "公管科联络员", "extension_decision"),
        # no -1 / 0 reminders for 06-30 and no escalation on 07-01: the ladder moved
        ("07-20 08:30", "公管科联络员", "reminder"),  # -7 before 07-29
        ("07-26 08:30", "公管科联络员", "reminder"),
        ("07-28 08:30", "公管科联络员", "reminder"),
        ("07-29 08:30", "公管科联络员", "reminder"),
        ("08-01 08:30", "公管科联络员", "escalation"),
        ("08-03 08:30", "熊伟", "escalation"),
    ]


def test_one_of_two_completions_still_chases(engine: Engine) -> None:
    worker, clock, adapter, timeline = setup(engine)

    def once(now: datetime) -> None:
        with session_scope(engine) as session:
            occ, who = ids(session, "13.1", "熊伟", due=date(2022, 6, 30))
            replies.complete(session, occurrence_id=occ, person_id=who, now=now, note="检查1家")

    timeline.at(local(2022, 6, 24, 15, 0), once)
    simulate(engine, worker, clock, timeline, local(2022, 6, 30, 18, 0))
    with Session(engine) as session:
        occ = session.get(Occurrence, ids(session, "13.1", "熊伟", due=date(2022, 6, 30))[0])
        assert occ is not None and (occ.status, occ.times_done, occ.times_required) == (
            "open",
            1,
            2,
        )
    texts = [(m.chat_id, plain_text(m.message)) for m in adapter.sent]
    later = [(chat, t) for chat, t in texts if "13.1." in t and "本期进度：已完成 1/2 次" in t]
    assert {chat for chat, _ in later} >= {
        "熊伟"
    }  # the -1 and 0 reminders say 1/2 and keep chasing


def test_the_demo_runs_and_summarises() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--until", "2022-08-05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "发给 熊伟" in out and "🔵 提醒" in out and "🟡 黄色督办" in out and "📋 督办汇总" in out
    assert "== 演示小结：2022-05-23 至 2022-08-05" in out
    assert "申请延期并获批准：25" in out and "始终未办：39" in out
    assert "[演示] 第 1 周" in result.stderr
    assert "send_outcome" not in result.stderr  # its output is the messages, not a send log


def test_plan_counts_what_it_wrote_on_both_backends(engine: Engine) -> None:
    worker, _clock, _adapter, _timeline = setup(engine)
    written = worker.engine.plan(local(2022, 5, 26, 8, 30))
    again = worker.engine.plan(local(2022, 5, 26, 8, 30))
    with Session(engine) as session:
        rows = session.exec(select(Notification)).all()
    assert written == len(rows) > 0  # psycopg 3 reports rowcount -1: count what was returned
    assert again == 0


def test_an_approval_can_never_shorten_a_deadline_the_list_moved_meanwhile(engine: Engine) -> None:
    """Asked to extend to 08-05; the list is re-imported with the deadline moved to 08-31;
    approving the old request now would move it back: refused, the deadline stays."""
    from bot.replies import ReplyRefused
    from tests.fakes.chat import SCHEDULE_YAML

    first = SCHEDULE_YAML
    spec = load_schedule("e2e.yaml", text=first).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=local(2022, 6, 1, 9, 0), horizon_days=62)
    with session_scope(engine) as session:
        occ_id, zhang = ids(session, "5", "张敏")
        asked = replies.request_extension(
            session,
            occurrence_id=occ_id,
            person_id=zhang,
            now=local(2022, 7, 20, 10, 0),
            new_date=date(2022, 8, 5),
            reason="设备未到",
        )
        reply_id = asked.id
    moved = load_schedule("e2e.yaml", text=first.replace("due: 2022-07-29", "due: 2022-08-31"))
    assert moved.spec is not None
    with session_scope(engine) as session:
        import_schedule(session, moved.spec, now=local(2022, 7, 21, 9, 0), horizon_days=62)
    with session_scope(engine) as session:
        lead = session.exec(select(Person).where(Person.name == "熊伟")).one()
        assert reply_id is not None and lead.id is not None
        try:
            replies.decide_extension(
                session,
                reply_id=reply_id,
                person_id=lead.id,
                now=local(2022, 7, 21, 10, 0),
                approve=True,
            )
        except ReplyRefused as refused:
            assert refused.code == "extension_stale"
        else:
            raise AssertionError("a stale approval went through")
    with Session(engine) as session:
        occ = session.get(Occurrence, occ_id)
        assert occ is not None and occ.extended_to is None and occ.due_date == date(2022, 8, 31)


def test_an_occurrence_that_cannot_be_planned_stops_nothing_else(engine: Engine) -> None:
    """A row the calendar cannot place (9999-12-31: no working day after it; written before
    validation bounded dates, or by hand) is set aside with its error, the list's admins are
    told, and every other occurrence of the tick is planned as usual (issue 15, B)."""
    worker, _clock, _adapter, _timeline = setup(engine)
    now = local(2022, 5, 26, 8, 30)
    with session_scope(engine) as session:
        poisoned = session.exec(
            select(Occurrence).join(Task).where(Task.ref == "6").order_by(Occurrence.id)
        ).first()
        assert poisoned is not None
        poisoned.due_date = date(9999, 12, 31)
        poisoned.next_action_at = now - timedelta(minutes=1)
        session.add(poisoned)
        poisoned_id = poisoned.id
    written = worker.engine.plan(now)
    with Session(engine) as session:
        row = session.get(Occurrence, poisoned_id)
        assert row is not None and row.planning_error and row.next_action_at is None
        notes = session.exec(select(Notification)).all()
        admins = {p.id for p in session.exec(select(Person).where(Person.admin))}
    assert written == len(notes)
    planning = [n for n in notes if n.kind == "admin_alert" and n.occurrence_id == poisoned_id]
    assert admins and {n.person_id for n in planning} == admins  # the list's admins are told
    others = [n for n in notes if n.occurrence_id != poisoned_id and n.kind == "reminder"]
    assert others, "the rest of the tick was planned"
    assert worker.engine.plan(now) == 0  # set aside: not retried every tick


def test_the_collector_is_off_during_a_pass_and_back_on_after_it(engine: Engine) -> None:
    """A planning pass pauses Python's cyclic collector (a catch-up's survivors made it scan
    the heap again and again); overlapping passes keep it off until the last one ends, an
    error ends the pause too, and a collector that was off stays off."""
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_pass() -> None:
        with collector_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_pass)
    with collector_paused():
        assert not gc.isenabled()
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other pass is still under way
    release.set()
    thread.join(10)
    assert gc.isenabled()
    try:
        with collector_paused():
            raise RuntimeError("a pass that fails")
    except RuntimeError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    worker, clock, _adapter, _timeline = setup(engine)
    worker.plan_pass(clock.now())
    assert gc.isenabled()


def test_the_horizon_is_behind_only_when_something_due_may_not_exist_yet(engine: Engine) -> None:
    """The first pass after a restart sends the catch-up before it rolls the horizon, unless
    the outage outlasted the horizon (then a period due now may have no occurrence yet)."""
    worker, clock, _adapter, _timeline = setup(engine)  # imported with a 62-day horizon
    with Session(engine) as session:
        until = session.exec(select(Schedule)).one().materialised_until
    assert until is not None
    assert not worker.engine.behind(clock.now())
    assert not worker.engine.behind(
        local(until.year, until.month, until.day, 8) - timedelta(days=1)
    )
    assert worker.engine.behind(local(until.year, until.month, until.day, 8))  # tomorrow is not
    worker.clock.set(local(until.year, until.month, until.day, 8) + timedelta(days=30))
    worker.materialise()
    assert not worker.engine.behind(worker.clock.now())
