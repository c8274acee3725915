"""One-time, expiring invites that bind a chat to a person.

Only a SHA-256 of the token is stored, so a copy of the database cannot be used to bind a
chat.  Redeeming is a conditional UPDATE that must change exactly one row: two chats
racing with the same link cannot both win.  Binding and inviting are audit events.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bot.identities import announce, bind, people_of
from bot.store.models import AuditEvent, Invite, Person

TOKEN_BYTES = 24  # 32 URL-safe characters; Telegram's start parameter allows 64 of [A-Za-z0-9_-]


class InviteRefused(Exception):
    """``code``: invalid | expired | used | inactive | throttled (a template key)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(
    session: Session,
    *,
    person: Person,
    now: datetime,
    ttl: timedelta,
    actor: str,
    channel: str | None = None,
) -> tuple[str, Invite]:
    """A fresh token (shown once, never stored) and its row; ``channel`` (web, chat, cli) is
    written on the audit event."""
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
            channel=channel,
            detail={
                "person": person.name,
                "invite": invite.id,
                "expires_at": invite.expires_at.isoformat(),
            },
        )
    )
    return token, invite


# Guessing a token is hopeless (192 bits), but a bot answering 10,000 guesses a second is a
# bot that can be made to do work for free: failed attempts are throttled per chat and overall.
CHAT_FAILURES = (5, timedelta(minutes=10))  # 5 failed tokens from one chat in 10 minutes
ALL_FAILURES = (60, timedelta(minutes=1))  # 60 failed tokens from anyone in a minute


def _failures(session: Session, since: datetime, actor: str | None = None) -> int:
    query = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "invite_refused", col(AuditEvent.at) >= since)
    )
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    return int(session.exec(query).one())


def _refuse(
    session: Session, code: str, *, platform: str, chat_id: str, now: datetime
) -> InviteRefused:
    """A failed attempt is recorded (it counts towards the throttle) and refused."""
    session.add(
        AuditEvent(
            at=now,
            actor=f"chat:{platform}:{chat_id}"[:120],
            action="invite_refused",
            channel="chat",
            platform=platform,
            detail={"code": code},
        )
    )
    return InviteRefused(code)


def redeem(session: Session, *, token: str, platform: str, chat_id: str, now: datetime) -> Person:
    """Bind ``chat_id`` to the invited person, or raise InviteRefused (``throttled`` after too
    many failed attempts from this chat, or from everyone, in a short time)."""
    actor = f"chat:{platform}:{chat_id}"[:120]
    limit, window = CHAT_FAILURES
    if _failures(session, now - window, actor) >= limit:
        raise InviteRefused("throttled")
    limit, window = ALL_FAILURES
    if _failures(session, now - window) >= limit:
        raise InviteRefused("throttled")

    def fail(code: str) -> InviteRefused:
        return _refuse(session, code, platform=platform, chat_id=chat_id, now=now)

    if not token or len(token) > 64:
        raise fail("invalid")
    invite = session.exec(select(Invite).where(Invite.token_hash == token_hash(token))).first()
    if invite is None:
        raise fail("invalid")
    if invite.used_at is not None:
        raise fail("used")
    if invite.expires_at <= now:
        raise fail("expired")
    person = session.get(Person, invite.person_id)
    if person is None or not person.active:
        raise fail("inactive")
    claimed = session.execute(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise fail("used")
    bound = bind(session, person=person, platform=platform, chat_id=chat_id, now=now)
    if bound.new:
        announce(session, person=person, binding=bound.binding, now=now)
    session.add(
        AuditEvent(
            at=now,
            actor=f"person:{person.id}",
            action="chat_bound",
            schedule_id=person.schedule_id,
            person_id=person.id,
            channel="chat",
            platform=platform,
            detail={
                "person": person.name,
                "platform": platform,
                "invite": invite.id,
                "binding": bound.binding.id,
                "replaced_identity": bound.replaced,
                "merged_identity": bound.merged_from,
            },
        )
    )
    return person


def bound_people(session: Session, platform: str, chat_id: str) -> list[Person]:
    """Every active Person row this chat answers for (one per list the human is on)."""
    return people_of(session, platform, chat_id)


def bound_person(session: Session, platform: str, chat_id: str) -> Person | None:
    """Who this chat speaks for, if anyone (the first of their lists; an inactive person
    speaks for nobody)."""
    found = people_of(session, platform, chat_id)
    return found[0] if found else None
