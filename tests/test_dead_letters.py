"""Dead letters are visible to admins and re-drivable (issue 15, A): `dutybot dead-letters`
lists what could not be delivered, `--redrive` queues it again with an audit event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.outbox import expire
from bot.settings import get_settings
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Delivery
from tests.fakes.contract import HARNESSES
from tests.test_cli import invoke
from tests.test_dispatch_contract import NOW, SCHEDULE, gather, queue, seeded


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name in ("DATABASE_URL", "DUTYBOT_DATABASE_URL", "DUTYBOT_LANG"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield {"DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN"}
    get_settings.cache_clear()


def test_admins_see_dead_letters_and_send_them_again(engine: Engine, env: dict[str, str]) -> None:
    with HARNESSES["telegram"]() as harness:
        people = seeded(engine, harness)
    assert invoke(env, "dead-letters") == (0, "没有投递失败的消息。\n")
    queue(engine, people["熊伟"], "k-dead")
    gather(engine, NOW, ["telegram"])
    with session_scope(engine) as session:  # never sent, and past its relevance
        assert expire(session, NOW + timedelta(days=8)) == 1
    code, said = invoke(env, "dead-letters", "--schedule", SCHEDULE)
    assert code == 0
    assert "发给 熊伟（telegram，管理员告警，1 项）：已过期" in said
    assert "共 1 条" in said and "--redrive" in said
    code, said = invoke(env, "dead-letters", "--redrive", "--schedule", SCHEDULE)
    assert (code, said) == (0, "已重新排队 1 条，将在下一个发送时段发出。\n")
    with Session(engine) as session:
        assert [d.state for d in session.exec(select(Delivery)).all()] == ["pending"]
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "dead_letters_redriven")
        ).one()
        assert (event.channel, event.actor, event.detail["count"]) == ("cli", "cli", 1)
    assert invoke(env, "dead-letters") == (0, "没有投递失败的消息。\n")
