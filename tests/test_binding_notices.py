"""Every new binding is told to the admins and to the person's other chats, with a one-tap
"这不是我" that unbinds it (issue 15, chat security: a leaked invite link)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import SimulatedClock
from bot.conversation.events import Inbound
from bot.conversation.invites import create_invite, redeem
from bot.conversation.service import Conversation
from bot.signing import Signer
from bot.store.db import session_scope
from bot.store.models import ChatBinding, Notification, Person
from bot.worker import Worker
from tests.fakes.chat import REMIND_DAY, seed
from tests.fakes.contract import ScriptedAdapter

SIGNER = Signer(b"notice-secret")


def invite(engine: Engine, name: str) -> str:
    with session_scope(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        token, _ = create_invite(
            session, person=person, now=REMIND_DAY, ttl=timedelta(days=1), actor="test"
        )
        return token


def use(engine: Engine, token: str, platform: str, chat: str) -> None:
    with session_scope(engine) as session:
        redeem(session, token=token, platform=platform, chat_id=chat, now=REMIND_DAY)


def conversation(engine: Engine, platform: str) -> Conversation:
    return Conversation(
        db=engine, clock=SimulatedClock(REMIND_DAY), signer=SIGNER, platform=platform
    )


def press(engine: Engine, platform: str, chat: str, binding_id: int):  # type: ignore[no-untyped-def]
    event = Inbound(platform, chat, chat, callback=SIGNER.sign("unbind", binding_id))
    return asyncio.run(conversation(engine, platform).handle(event))


def test_a_second_chat_is_told_everywhere_else_and_not_me_unbinds_it(engine: Engine) -> None:
    tokens = seed(engine)
    use(engine, tokens["李强"], "telegram", "503")  # the admin
    use(engine, tokens["张敏"], "telegram", "501")
    use(engine, invite(engine, "张敏"), "spare", "x-1")  # someone opens 张敏's second link
    telegram, spare = ScriptedAdapter(platform="telegram"), ScriptedAdapter(platform="spare")
    clock = SimulatedClock(REMIND_DAY)
    asyncio.run(Worker(engine, {"telegram": telegram, "spare": spare}, clock).tick())
    assert any("新的绑定" in t and "张敏" in t for t in telegram.sent["503"])  # admin told
    assert any("有新的绑定" in t for t in telegram.sent["501"])  # 张敏's other chat told
    assert not any("有新的绑定" in t for t in spare.sent.get("x-1", []))  # not the new one
    with Session(engine) as session:
        new = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "x-1")).one()
    assert new.id is not None
    # someone else's chat may not unbind it
    refused = press(engine, "telegram", "502", new.id)
    assert refused.alert or refused.says[0].kind in ("chat_refusal", "chat_unknown")  # type: ignore[attr-defined]
    # 张敏, from the Telegram chat: 这不是我
    outcome = press(engine, "telegram", "501", new.id)
    assert outcome.says and outcome.says[0].kind == "chat_unbound"  # type: ignore[attr-defined]
    with Session(engine) as session:
        assert not session.get(ChatBinding, new.id).active  # type: ignore[union-attr]
        removed = session.exec(
            select(Notification).where(Notification.kind == "binding_removed")
        ).all()
    assert removed  # the admins are told
    again = press(engine, "telegram", "501", new.id)
    assert again.alert  # already unbound


def test_the_first_binding_tells_the_admins_only(engine: Engine) -> None:
    tokens = seed(engine)
    use(engine, tokens["张敏"], "telegram", "501")
    with Session(engine) as session:
        kinds = sorted(n.kind for n in session.exec(select(Notification)).all())
    assert kinds == ["binding_added"]  # to 李强, the admin; no "other chats" to tell
