"""Invites: one-time, expiring, stored only as a hash; binding is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.conversation.invites import (
    InviteRefused,
    bound_person,
    create_invite,
    redeem,
    telegram_link,
    token_hash,
)
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Invite, Person
from tests.conftest import local
from tests.fakes.chat import seed

NOW = local(2022, 6, 7, 9, 0)


def person(session: Session, name: str) -> Person:
    return session.exec(select(Person).where(Person.name == name)).one()


def invite(engine: Engine, name: str, ttl: timedelta = timedelta(hours=72)) -> str:
    with session_scope(engine) as session:
        token, _ = create_invite(
            session, person=person(session, name), now=NOW, ttl=ttl, actor="cli"
        )
        return token


def use(engine: Engine, token: str, chat: str, at: object = NOW) -> Person:
    with session_scope(engine) as session:
        return redeem(session, token=token, platform="telegram", chat_id=chat, now=at)  # type: ignore[arg-type]


def refusal(engine: Engine, token: str, chat: str, at: object = NOW) -> str:
    with pytest.raises(InviteRefused) as info:
        use(engine, token, chat, at)
    return info.value.code


def test_only_a_hash_is_stored_and_the_link_is_a_deep_link(engine: Engine) -> None:
    seed(engine)
    token = invite(engine, "张敏")
    with Session(engine) as session:
        hashes = [i.token_hash for i in session.exec(select(Invite)).all()]
        created = session.exec(
            select(AuditEvent).where(AuditEvent.action == "invite_created")
        ).all()
    assert token not in hashes and token_hash(token) in hashes
    assert all(token not in str(event.detail) for event in created)
    link = telegram_link("@dutybot_test_bot", token)
    assert link == f"https://t.me/dutybot_test_bot?start={token}"
    assert len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()


def test_binds_once_then_refuses(engine: Engine) -> None:
    seed(engine)
    token = invite(engine, "张敏")
    assert use(engine, token, "501").name == "张敏"
    assert refusal(engine, token, "501") == "used"
    assert refusal(engine, token, "999") == "used"
    with Session(engine) as session:
        assert bound_person(session, "telegram", "501").name == "张敏"  # type: ignore[union-attr]
        assert bound_person(session, "telegram", "999") is None
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "chat_bound")).one()
    assert event.actor == f"person:{event.person_id}" and event.detail["platform"] == "telegram"  # type: ignore[index]


def test_expired_and_unknown_tokens_are_refused(engine: Engine) -> None:
    seed(engine)
    token = invite(engine, "张敏", ttl=timedelta(hours=1))
    assert refusal(engine, token, "501", NOW + timedelta(hours=1)) == "expired"
    assert refusal(engine, "no-such-token", "501") == "invalid"
    assert refusal(engine, "", "501") == "invalid"
    assert refusal(engine, "x" * 65, "501") == "invalid"
    with Session(engine) as session:
        assert not session.exec(select(ChatBinding)).all()


def test_an_inactive_person_cannot_bind(engine: Engine) -> None:
    seed(engine)
    token = invite(engine, "张敏")
    with session_scope(engine) as session:
        found = person(session, "张敏")
        found.active = False
        session.add(found)
    assert refusal(engine, token, "501") == "inactive"


def test_rebinding_moves_the_person_and_the_chat(engine: Engine) -> None:
    seed(engine)
    use(engine, invite(engine, "张敏"), "501")
    # a new phone: the new chat is bound, the old one no longer speaks for 张敏
    use(engine, invite(engine, "张敏"), "601")
    # the old chat is then handed to someone else by their own invite
    use(engine, invite(engine, "李强"), "501")
    with Session(engine) as session:
        assert bound_person(session, "telegram", "601").name == "张敏"  # type: ignore[union-attr]
        assert bound_person(session, "telegram", "501").name == "李强"  # type: ignore[union-attr]
        active = session.exec(select(ChatBinding).where(ChatBinding.active == True)).all()  # noqa: E712
    assert sorted(b.chat_id for b in active) == ["501", "601"]


def test_binding_again_clears_unreachable(engine: Engine) -> None:
    seed(engine)
    with session_scope(engine) as session:
        found = person(session, "张敏")
        found.unreachable_reason = "Forbidden: bot was blocked by the user"
        session.add(found)
    use(engine, invite(engine, "张敏"), "501")
    with Session(engine) as session:
        assert person(session, "张敏").unreachable_reason is None
