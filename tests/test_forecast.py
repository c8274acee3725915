"""The next window's volume, shown before it happens, from a rehearsal that leaves nothing."""

from __future__ import annotations

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.forecast import forecast
from bot.identities import bind
from bot.store.db import session_scope
from bot.store.models import Bundle, Delivery, Notification, Occurrence, Person
from tests.conftest import local
from tests.test_delivery_model import imported, many_tasks


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(t)).one()
            for t in (Notification, Bundle, Delivery)
        )


def test_an_overdue_import_shows_one_message_per_person_before_it_happens(engine: Engine) -> None:
    imported(engine, many_tasks("2022-05-31"), local(2022, 6, 20, 10, 0))
    with session_scope(engine) as session:
        zhang = session.exec(select(Person).where(Person.name == "张敏")).one()
        bind(session, person=zhang, platform="telegram", chat_id="1", now=local(2022, 6, 20))
    with Session(engine) as session:
        progress = [(o.id, o.next_action_at) for o in session.exec(select(Occurrence)).all()]
    before = counts(engine)
    found = forecast(engine, "many-2022", local(2022, 6, 20, 10, 0))
    assert found.at == local(2022, 6, 20, 10, 0)  # inside the morning window: now
    people = {r.name: r for r in found.recipients}
    assert people["张敏"].messages == 1 and people["张敏"].items == 5  # one summary, 5 items
    assert people["熊伟"].waiting and people["熊伟"].items >= 5  # not bound: waits for a chat
    # a rehearsal: nothing stays
    assert counts(engine) == before
    with Session(engine) as session:
        assert [
            (o.id, o.next_action_at) for o in session.exec(select(Occurrence)).all()
        ] == progress


def test_after_hours_the_forecast_is_for_the_next_morning(engine: Engine) -> None:
    imported(engine, many_tasks("2022-05-31"), local(2022, 6, 17, 19, 0))  # a Friday evening
    found = forecast(engine, "many-2022", local(2022, 6, 17, 19, 0))
    assert found.at == local(2022, 6, 20, 8, 30)


def test_the_forecast_reads_as_a_sentence_in_both_languages(engine: Engine) -> None:
    from zoneinfo import ZoneInfo

    from bot.forecast import describe

    imported(engine, many_tasks("2022-05-31"), local(2022, 6, 20, 10, 0))
    found = forecast(engine, "many-2022", local(2022, 6, 20, 10, 0))
    zh = describe(found, ZoneInfo("Asia/Shanghai"), "zh-CN")
    assert zh.startswith("下一个发送时段（2022-06-20 10:00）") and "尚未绑定聊天" in zh
    en = describe(found, ZoneInfo("Asia/Shanghai"), "en")
    assert en.startswith("Next sending window (2022-06-20 10:00)")
