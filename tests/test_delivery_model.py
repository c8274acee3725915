"""The delivery model: a notification is for a person, delivered to each of their bindings;
one message per sending window (reminders) and per day and level (escalations); catch-up on
an overdue list; late binders get what is still relevant."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.adapters.telegram import TEXT_LIMIT
from bot.bundling import Windows, place
from bot.calendar import WorkingHours
from bot.clock import SimulatedClock
from bot.conversation.invites import create_invite, redeem
from bot.engine import Engine as Planner
from bot.identities import bind
from bot.materialise import schedule_time
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import open_store, session_scope
from bot.store.models import Bundle, Delivery, Notification, Occurrence, Person, Schedule
from bot.worker import Worker
from tests.conftest import SCHEDULES, fresh_database, local
from tests.fakes.contract import ScriptedAdapter

MANY = """\
schedule: many-2022
title: 测试清单
issued_on: 2022-05-23
people:
  邓清华: {chief: true}
  熊伟: {}
  张敏: {}
units:
  能源科: {contacts: [张敏]}
policy:
  remind: [-3, -1, 0]
  escalate:
    - {after: 1, to: [assignees]}
    - {after: 3, to: [lead]}
    - {after: 5, to: [chief], repeat: 5}
tasks:
"""


def many_tasks(due: str, count: int = 5) -> str:
    rows = "".join(
        f'  - {{ref: "{n}", title: 工作{n}, lead: [熊伟], units: [能源科], due: {due}}}\n'
        for n in range(1, count + 1)
    )
    return MANY + rows


def imported(engine: Engine, text: str, at: datetime) -> None:
    spec = load_schedule("many.yaml", text=text).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=at, horizon_days=62)


def person(session: Session, name: str) -> Person:
    return session.exec(select(Person).where(Person.name == name)).one()


def reminders(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        rows = session.exec(select(Notification).where(Notification.kind == "reminder")).all()
        return Counter(n.state for n in rows)


def bind_on(engine: Engine, name: str, platform: str, chat: str, at: datetime) -> None:
    with session_scope(engine) as session:
        bind(session, person=person(session, name), platform=platform, chat_id=chat, now=at)


def test_a_reminder_after_a_re_import_shows_the_task_as_the_list_now_has_it(
    engine: Engine,
) -> None:
    """What a message shows of its task is kept across ticks, until the next import: the
    reminder after a re-import that renamed the task and changed its lead shows the new
    title and lead, from the same running worker."""
    imported(engine, many_tasks("2022-06-10", count=1), local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 23, 8, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))  # the -3 reminder
    worker = Worker(engine, adapter, clock)
    asyncio.run(worker.tick())
    [first] = adapter.sent["zm"]
    assert "工作1" in first and "熊伟" in first
    renamed = many_tasks("2022-06-10", count=1).replace("title: 工作1", "title: 改名任务")
    imported(engine, renamed.replace("lead: [熊伟]", "lead: [邓清华]"), local(2022, 6, 8, 9))
    clock.set(local(2022, 6, 9, 8, 30))  # the -1 reminder
    asyncio.run(worker.tick())
    [_, second] = adapter.sent["zm"]
    assert "改名任务" in second and "工作1" not in second
    assert "邓清华" in second and "熊伟" not in second


def test_five_reminders_due_together_are_one_message(engine: Engine) -> None:
    imported(engine, many_tasks("2022-06-10"), local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 23, 8, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))  # the -3 reminders of all five tasks
    asyncio.run(Worker(engine, adapter, clock).tick())
    assert len(adapter.sent["zm"]) == 1
    [text] = adapter.sent["zm"]
    assert all(f"工作{n}" in text for n in range(1, 6))


def test_planning_again_what_was_sent_leaves_no_empty_message(engine: Engine) -> None:
    """Planning writes what is due straight into its bundle; a key the outbox has already is
    skipped, and a bundle made for nothing but such keys goes with it (it would have been an
    empty message in the next window, taking a place of the person's daily cap)."""
    imported(engine, many_tasks("2022-06-10"), local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 23, 8, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))
    worker = Worker(engine, adapter, clock)
    asyncio.run(worker.tick())
    assert len(adapter.sent["zm"]) == 1
    with session_scope(engine) as session:  # the ladders planned afresh: the same keys again
        session.execute(
            update(Occurrence).values(
                planned_due=None, reminder_step=-1, next_action_at=clock.now()
            )
        )
    asyncio.run(worker.tick())
    assert len(adapter.sent["zm"]) == 1
    with Session(engine) as session:
        assert len(session.exec(select(Bundle)).all()) == 1
        assert len(session.exec(select(Delivery)).all()) == 1
        assert reminders(engine) == Counter({"sent": 5})


def test_a_person_on_two_platforms_gets_each_message_once_per_binding(engine: Engine) -> None:
    imported(engine, many_tasks("2022-06-10", count=1), local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "spare", "zm-spare", local(2022, 5, 23, 8, 0))
    one, two = ScriptedAdapter(), ScriptedAdapter(platform="spare")
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))
    worker = Worker(engine, {"scripted": one, "spare": two}, clock)
    asyncio.run(worker.tick())
    asyncio.run(worker.tick())
    assert len(one.sent["zm"]) == 1 and len(two.sent["zm-spare"]) == 1


def test_a_late_binder_gets_the_latest_reminder_not_the_history(engine: Engine) -> None:
    imported(engine, many_tasks("2022-06-10", count=1), local(2022, 5, 23, 8, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))
    worker = Worker(engine, adapter, clock)
    asyncio.run(worker.tick())  # the -3 reminder: nobody bound yet
    clock.set(local(2022, 6, 9, 8, 30))
    asyncio.run(worker.tick())  # the -1 reminder: still nobody
    assert reminders(engine) == Counter({"waiting": 2})  # kept, not dropped
    clock.set(local(2022, 6, 9, 10, 0))
    with session_scope(engine) as session:  # 张敏 binds an hour later
        token, _ = create_invite(
            session,
            person=person(session, "张敏"),
            now=clock.now(),
            ttl=timedelta(days=1),
            actor="test",
        )
        redeem(session, token=token, platform="scripted", chat_id="zm", now=clock.now())
    asyncio.run(worker.tick())
    [text] = adapter.sent["zm"]  # one message: the latest reminder
    assert "工作1" in text
    assert reminders(engine) == Counter({"sent": 1, "superseded": 1})


def test_first_run_on_an_overdue_list_sends_one_summary_per_person(engine: Engine) -> None:
    """Imported weeks after every deadline: no replay of the ladder.  Each person hears once,
    at the step today implies (the chief's), about all their items."""
    imported(engine, many_tasks("2022-05-31"), local(2022, 6, 20, 9, 0))
    for name, chat in (("张敏", "zm"), ("熊伟", "xw"), ("邓清华", "dqh")):
        bind_on(engine, name, "scripted", chat, local(2022, 6, 20, 9, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 20, 9, 0))
    worker = Worker(engine, adapter, clock)
    asyncio.run(worker.tick())
    counts = {chat: len(texts) for chat, texts in adapter.sent.items()}
    # one escalation message each (5 items), and the leaders' digests
    with Session(engine) as session:
        bundles = Counter((b.person_id, b.kind) for b in session.exec(select(Bundle)).all())
        levels = {
            n.level for n in session.exec(select(Notification)).all() if n.kind == "escalation"
        }
    assert all(n == 1 for (_, kind), n in bundles.items() if kind == "escalation")
    assert levels == {"red"}  # the step today implies, not yellow first
    assert counts["zm"] == 1 and "工作5" in adapter.sent["zm"][0]
    assert counts["dqh"] <= 2 and counts["xw"] <= 2  # the escalation and the day's digest


def test_escalations_to_a_leader_are_one_message_a_day_per_level(engine: Engine) -> None:
    imported(engine, many_tasks("2022-06-01"), local(2022, 5, 23, 8, 0))
    for name, chat in (("张敏", "zm"), ("熊伟", "xw")):
        bind_on(engine, name, "scripted", chat, local(2022, 5, 23, 8, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 2, 8, 30))
    worker = Worker(engine, adapter, clock)
    for hour in (8, 10, 15):
        clock.set(local(2022, 6, 2, hour, 30))
        asyncio.run(worker.tick())
    escalations = [t for t in adapter.sent["zm"] if "督办" in t]
    assert len(escalations) == 1  # five items, one message


def test_windows_hold_chasing_messages_for_the_next_one() -> None:
    spec = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert spec is not None
    schedule = Schedule(
        id="x",
        title="x",
        timezone="Asia/Shanghai",
        calendar="cn",
        working_hours="08:30-18:00",
        content_hash="h",
        planned_from=date(2022, 5, 23),
        imported_at=local(2022, 5, 23),
    )
    st = schedule_time(schedule)
    windows = Windows.from_policy(None, WorkingHours.parse("08:30-18:00"))
    lunch = local(2022, 6, 1, 12, 30)
    placed = place(
        kind="reminder", level=None, not_before=lunch, notification_id=1, windows=windows, st=st
    )
    assert placed.send_at == local(2022, 6, 1, 14, 0)  # after the lunch break
    nextwin = place(
        kind="reminder",
        level=None,
        not_before=lunch,
        notification_id=1,
        windows=windows,
        st=st,
        attempt=1,
    )
    assert nextwin.send_at == local(2022, 6, 2, 8, 30)
    friday_evening = local(2022, 6, 2, 18, 30)  # 06-03 is the Dragon Boat Festival
    escalation = place(
        kind="escalation",
        level="red",
        not_before=friday_evening,
        notification_id=2,
        windows=windows,
        st=st,
    )
    assert escalation.send_at == local(2022, 6, 6, 8, 30)
    notice = place(
        kind="completed", level=None, not_before=lunch, notification_id=3, windows=windows, st=st
    )
    assert notice.send_at == lunch  # not chasing: goes when due


def test_deliveries_of_a_bundle_record_their_own_outcome(engine: Engine) -> None:
    imported(engine, many_tasks("2022-06-10", count=1), local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 23, 8, 0))
    bind_on(engine, "张敏", "spare", "zm-spare", local(2022, 5, 23, 8, 0))
    ok = ScriptedAdapter()
    gone = ScriptedAdapter(platform="spare")
    gone.script["zm-spare"] = ["gone"]
    clock = SimulatedClock(local(2022, 6, 7, 8, 30))
    asyncio.run(Worker(engine, {"scripted": ok, "spare": gone}, clock).tick())
    with Session(engine) as session:
        states = sorted(d.state for d in session.exec(select(Delivery)).all())
        notes = {n.state for n in session.exec(select(Notification)).all() if n.kind == "reminder"}
    assert states == ["gone", "sent"] and notes == {"sent"}


def test_after_an_outage_each_person_gets_one_message_per_level_that_fits_one_screen(
    engine: Engine,
) -> None:
    """Two hundred tasks left unanswered for three weeks (the restart bench's 10k, small): the
    catch-up is one escalation message per person and level, listing the most overdue and
    counting the rest -- not the whole list split over many Telegram messages."""
    imported(engine, many_tasks("2022-05-31", count=200), local(2022, 5, 23, 9, 0))
    for name, chat in (("张敏", "zm"), ("熊伟", "xw"), ("邓清华", "dqh")):
        bind_on(engine, name, "scripted", chat, local(2022, 5, 23, 9, 0))
    adapter = ScriptedAdapter()
    clock = SimulatedClock(local(2022, 6, 20, 9, 0))
    worker = Worker(engine, adapter, clock)
    asyncio.run(worker.tick())
    clock.set(local(2022, 6, 20, 15, 0))  # later that day: nothing more for the same level
    asyncio.run(worker.tick())
    escalations = {
        chat: [t for t in texts if "督办" in t and "汇总" not in t]
        for chat, texts in adapter.sent.items()
    }
    assert escalations["dqh"] and escalations["zm"]
    assert all(len(texts) == 1 for texts in escalations.values() if texts)
    for texts in escalations.values():
        for text in texts:
            assert "200 项已逾期" in text and "另有 185 项未列出" in text
            assert len(text) < TEXT_LIMIT


def test_a_duty_missed_period_after_period_counts_its_open_overdue_periods(
    engine: Engine,
) -> None:
    """The collapsed escalation says how many periods are overdue and still open: an
    extended period whose new date has not come is not overdue, a done one is not open."""
    text = MANY + (
        '  - {ref: "1", title: 月报, lead: [熊伟], units: [能源科], every: month,'
        " from: 2022-06-01}\n"
    )
    imported(engine, text, local(2022, 5, 30, 8, 0))
    bind_on(engine, "张敏", "scripted", "zm", local(2022, 5, 30, 8, 0))
    clock = SimulatedClock(local(2022, 9, 20, 9, 0))
    worker = Worker(engine, ScriptedAdapter(), clock)
    worker.materialise()  # the nightly roll of the horizon, months later
    with session_scope(engine) as session:
        st = schedule_time(session.exec(select(Schedule)).one())
        june, july, august = session.exec(
            select(Occurrence).order_by(col(Occurrence.due_date)).limit(3)
        ).all()
        assert (june.due_date.month, july.due_date.month, august.due_date.month) == (6, 7, 8)
        extended, done = july, june  # an approved extension, and one done
        extended.extended_to = date(2022, 9, 26)
        extended.due_at = st.due_at(extended.extended_to)
        done.status = "done"
        session.add_all([extended, done])
    asyncio.run(worker.tick())
    with Session(engine) as session:
        counts = {
            n.payload["open_periods"]
            for n in session.exec(select(Notification)).all()
            if n.kind == "escalation" and n.payload
        }
    assert counts == {1}  # August only: June is done, July's new date is the 26th


def test_a_batch_whose_messages_cannot_be_written_is_rolled_back_whole_and_planned_again(
    tmp_path: Path,
) -> None:
    """On PostgreSQL one batch's messages are written by a second thread while the next batch
    is decided and its ladder states written.  When a batch's messages cannot be written, the
    batches before it stay planned; that batch and the one decided meanwhile keep nothing
    (ladder states and messages alike), no row stays locked, the error reaches the caller,
    and the next pass plans the rest once."""
    with fresh_database("postgresql", tmp_path) as url:
        engine = open_store(url)
        imported(engine, many_tasks("2022-05-31", count=40), local(2022, 6, 20, 9, 0))
        bind_on(engine, "张敏", "scripted", "zm", local(2022, 6, 20, 9, 0))
        now = local(2022, 6, 20, 9, 0)
        with Session(engine) as session:
            due = session.exec(
                select(Occurrence.id, Occurrence.next_action_at)
                .where(Occurrence.status == "open", col(Occurrence.next_action_at) <= now)
                .order_by(col(Occurrence.next_action_at), col(Occurrence.id))
            ).all()
        assert len(due) == 40
        refused = due[15][0]  # in the second batch (batches of 10, 20, then 40)
        with engine.begin() as conn:  # the server itself refuses that occurrence's messages
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.occurrence_id = {refused} THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON notification "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        planner = Planner(engine, batch=10)
        with pytest.raises(Exception, match="refused"):
            planner.plan_pass(now, platforms=["scripted"], digests=False)
        with engine.begin() as conn:  # nothing left locked: every due row can be taken now
            assert len(conn.exec_driver_sql("SELECT id FROM occurrence FOR UPDATE NOWAIT").all())
        with Session(engine) as session:
            planned = set(session.exec(select(Notification.occurrence_id)).all())
            after = dict(session.exec(select(Occurrence.id, Occurrence.next_action_at)).all())
        assert planned == {oid for oid, _ in due[:10]}  # the first batch, whole
        assert all(after[oid] == before for oid, before in due[10:])  # the rest untouched
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse ON notification")
        planner.plan_pass(now, platforms=["scripted"], digests=False)
        with Session(engine) as session:
            notes = session.exec(select(Notification)).all()
            bundles = Counter(
                (b.person_id, b.kind, b.level) for b in session.exec(select(Bundle)).all()
            )
        assert {n.occurrence_id for n in notes} == {oid for oid, _ in due}
        assert set(bundles.values()) == {1}  # still one message per person, kind and level
        engine.dispose()


def test_two_workers_planning_one_catch_up_together_give_each_person_one_message(
    tmp_path: Path,
) -> None:
    """Two workers plan an overdue list at the same moment on PostgreSQL, in small batches,
    each writing its rows straight into the leaders' shared bundles: no deadlock, every
    occurrence planned once, and still one message per person and level."""
    with fresh_database("postgresql", tmp_path) as url:
        engine = open_store(url)
        imported(engine, many_tasks("2022-05-31", count=300), local(2022, 6, 20, 9, 0))
        for name, chat in (("张敏", "zm"), ("熊伟", "xw"), ("邓清华", "dqh")):
            bind_on(engine, name, "scripted", chat, local(2022, 6, 20, 9, 0))
        clock = SimulatedClock(local(2022, 6, 20, 9, 0))
        workers = [Worker(engine, ScriptedAdapter(), clock) for _ in range(2)]
        for worker in workers:
            worker.engine = Planner(engine, batch=20)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def plan(worker: Worker) -> None:
            try:
                start.wait(10)
                worker.plan_pass(clock.now(), digests=False)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=plan, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        with Session(engine) as session:
            notes = session.exec(select(Notification)).all()
            bundles = Counter(
                (b.person_id, b.kind, b.level) for b in session.exec(select(Bundle)).all()
            )
            deliveries = Counter(d.bundle_id for d in session.exec(select(Delivery)).all())
        assert len({n.occurrence_id for n in notes}) == 300  # each planned, none twice:
        assert len(notes) == len({n.key for n in notes})  # the keys are unique anyway
        assert {n.state for n in notes} == {"bundled"}
        assert set(bundles.values()) == {1}  # one message per person, kind and level
        assert set(deliveries.values()) == {1} and len(deliveries) == len(bundles)
        engine.dispose()
