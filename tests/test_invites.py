"""Invites: one-time, expiring, stored only as a hash; binding is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.telegram_links import start_link
from bot.conversation.invites import (
    InviteRefused,
    bound_people,
    bound_person,
    create_invite,
    redeem,
    token_hash,
)
from bot.identities import mark_unreachable
from bot.schedule.importer import import_schedule
from bot.schedule.validate import load_schedule
from bot.store.db import session_scope
from bot.store.models import AuditEvent, ChatBinding, Invite, Person
from tests.conftest import local
from tests.fakes.chat import seed

NOW = local(2022, 6, 7, 9, 0)


def person(session: Session, name: str, schedule: str = "e2e-2022") -> Person:
    return session.exec(
        select(Person).where(Person.name == name, Person.schedule_id == schedule)
    ).one()


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
    link = start_link("@dutybot_test_bot", token)
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
    use(engine, invite(engine, "张敏"), "501")
    with session_scope(engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "501")).one()
        mark_unreachable(session, binding, reason="Forbidden: bot was blocked", now=NOW)
    use(engine, invite(engine, "张敏"), "501")  # the documented remedy: bind again
    with Session(engine) as session:
        binding = session.exec(select(ChatBinding).where(ChatBinding.chat_id == "501")).one()
        assert binding.unreachable_reason is None and binding.active


SECOND_LIST = """\
schedule: second-2022
title: 另一份清单
issued_on: 2022-05-23
people:
  张敏: {title: 安全员}
  王五: {title: 科员}
admins: [王五]
tasks:
  - {ref: "1", title: 另一项工作, responsible: [张敏], due: 2022-06-30}
"""


def test_one_chat_answers_for_one_person_on_every_list(engine: Engine) -> None:
    """An official on two lists opens the second list's invite from the chat that already
    answers for the first: one identity, both Person rows, no second binding."""
    seed(engine)
    spec = load_schedule("second.yaml", text=SECOND_LIST).spec
    assert spec is not None
    with session_scope(engine) as session:
        import_schedule(session, spec, now=NOW, horizon_days=62)
    use(engine, invite(engine, "张敏"), "501")
    with session_scope(engine) as session:
        second = session.exec(
            select(Person).where(Person.name == "张敏", Person.schedule_id == "second-2022")
        ).one()
        token, _ = create_invite(session, person=second, now=NOW, ttl=timedelta(hours=1), actor="t")
    use(engine, token, "501")
    with Session(engine) as session:
        people = bound_people(session, "telegram", "501")
        assert sorted(p.schedule_id for p in people) == ["e2e-2022", "second-2022"]
        assert len({p.identity_id for p in people}) == 1
        assert len(session.exec(select(ChatBinding)).all()) == 1


def test_failed_invites_are_throttled_per_chat(engine: Engine) -> None:
    seed(engine)
    good = invite(engine, "张敏")
    codes = []
    for n in range(7):
        with session_scope(engine) as session:  # as the conversation does: refusals commit
            try:
                redeem(
                    session,
                    token=f"guess-{n}",
                    platform="telegram",
                    chat_id="666",
                    now=NOW + timedelta(seconds=n),
                )
            except InviteRefused as refused:
                codes.append(refused.code)
    assert codes == ["invalid"] * 5 + ["throttled"] * 2
    # even the right token is refused from that chat until the window has passed ...
    assert refusal(engine, good, "666", NOW + timedelta(seconds=10)) == "throttled"
    # ... while another chat is not held up, and later the first one may try again
    assert use(engine, good, "777").name == "张敏"
    assert refusal(engine, "guess", "666", NOW + timedelta(minutes=11)) == "invalid"
