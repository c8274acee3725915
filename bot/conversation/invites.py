"""One-time, expiring invites that bind a chat to a person.

Only a SHA-256 of the token is stored, so a copy of the database cannot be used to bind a
chat.  Redeeming is a conditional UPDATE that must change exactly one row: two chats
racing with the same link cannot both win.  Binding and inviting are audit events.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.store.models import AuditEvent, ChatBinding, Invite, Person

TOKEN_BYTES = 24  # 32 URL-safe characters; Telegram's start parameter allows 64 of [A-Za-z0-9_-]


class InviteRefused(Exception):
    """``code``: invalid | expired | used | inactive (a template key, nothing more)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def telegram_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


def create_invite(
    session: Session, *, person: Person, now: datetime, ttl: timedelta, actor: str
) -> tuple[str, Invite]:
    """A fresh token (shown once, never stored) and its row."""
    assert person.id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invite = Invite(
        person_id=person.id, token_hash=token_hash(token), expires_at=now + ttl, created_at=now
    )
    session.add(invite)
    session.flush()
    session.add(
        AuditEvent(
            at=now,
            actor=actor,
            action="invite_created",
            schedule_id=person.schedule_id,
            person_id=person.id,
            detail={
                "person": person.name,
                "invite": invite.id,
                "expires_at": invite.expires_at.isoformat(),
            },
        )
    )
    return token, invite


def redeem(session: Session, *, token: str, platform: str, chat_id: str, now: datetime) -> Person:
    """Bind ``chat_id`` to the invited person, or raise InviteRefused."""
    if not token or len(token) > 64:
        raise InviteRefused("invalid")
    invite = session.exec(select(Invite).where(Invite.token_hash == token_hash(token))).first()
    if invite is None:
        raise InviteRefused("invalid")
    if invite.used_at is not None:
        raise InviteRefused("used")
    if invite.expires_at <= now:
        raise InviteRefused("expired")
    person = session.get(Person, invite.person_id)
    if person is None or not person.active:
        raise InviteRefused("inactive")
    claimed = session.execute(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InviteRefused("used")
    previous = _bind(session, person, platform, chat_id, now)
    person.unreachable_reason = None  # a fresh binding is the documented remedy for a block
    session.add(person)
    session.add(
        AuditEvent(
            at=now,
            actor=f"person:{person.id}",
            action="chat_bound",
            schedule_id=person.schedule_id,
            person_id=person.id,
            detail={
                "person": person.name,
                "platform": platform,
                "invite": invite.id,
                "replaced_person": previous,
            },
        )
    )
    return person


def _bind(
    session: Session, person: Person, platform: str, chat_id: str, now: datetime
) -> int | None:
    """One active chat per person and platform, one person per chat; returns whom the chat
    was bound to before, if someone else."""
    for other in session.exec(
        select(ChatBinding).where(
            ChatBinding.person_id == person.id,
            ChatBinding.platform == platform,
            ChatBinding.chat_id != chat_id,
            col(ChatBinding.active).is_(True),
        )
    ):
        other.active = False
        session.add(other)
    binding = session.exec(
        select(ChatBinding).where(ChatBinding.platform == platform, ChatBinding.chat_id == chat_id)
    ).first()
    previous = None
    assert person.id is not None
    if binding is None:
        binding = ChatBinding(person_id=person.id, platform=platform, chat_id=chat_id, bound_at=now)
    elif binding.person_id != person.id:
        previous = binding.person_id
    binding.person_id, binding.bound_at, binding.active = person.id, now, True
    session.add(binding)
    return previous


def bound_person(session: Session, platform: str, chat_id: str) -> Person | None:
    """Who this chat speaks for, if anyone (an inactive person speaks for nobody)."""
    binding = session.exec(
        select(ChatBinding).where(
            ChatBinding.platform == platform,
            ChatBinding.chat_id == chat_id,
            col(ChatBinding.active).is_(True),
        )
    ).first()
    if binding is None:
        return None
    person = session.get(Person, binding.person_id)
    return person if person is not None and person.active else None
