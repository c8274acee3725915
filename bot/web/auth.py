"""Who is signed in, and what they may see.

No passwords: a one-time sign-in link (a random token kept only as its SHA-256 in
``webtoken``, single use, ~15 minutes) starts a session kept in a signed, HttpOnly,
SameSite=Lax cookie with an expiry (Starlette's SessionMiddleware, itsdangerous).  Every
POST carries the session's CSRF token (hidden field ``csrf`` or header ``X-CSRF-Token``,
which base.html makes htmx send); a missing or wrong one is a 403.

Roles are per schedule, from the store at each request (a change of rights takes effect at
once): ``admin`` (Person.admin), ``leader`` (chief, or lead/responsible of a task),
``official`` (anyone else the list names).  Anything not allowed is a 403 page that
discloses nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, select

from bot.store.db import session_scope
from bot.store.models import Identity, Person, TaskMember, WebToken

SIGNIN, FEED = "signin", "feed"
CSRF_FIELD, CSRF_HEADER = "csrf", "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Forbidden(Exception):
    """Answered with the 403 page (nothing said about why)."""


class SignedOut(Exception):
    """Answered with a redirect to the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in human and the rights their Person rows hold, per schedule."""

    identity_id: int
    name: str
    persons: dict[str, int] = field(default_factory=dict)  # schedule id -> Person.id
    roles: dict[str, frozenset[str]] = field(default_factory=dict)  # schedule id -> roles

    def has(self, schedule_id: str, *roles: str) -> bool:
        return bool(self.roles.get(schedule_id, frozenset()) & set(roles))

    def person_in(self, schedule_id: str) -> int | None:
        return self.persons.get(schedule_id)

    @property
    def schedules(self) -> list[str]:
        return sorted(self.persons)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    *,
    identity_id: int,
    kind: str,
    now: datetime,
    ttl: timedelta | None,
    person_id: int | None = None,
) -> str:
    """A new secret token (the only time it exists in clear); the row keeps its hash."""
    token = secrets.token_urlsafe(24)
    session.add(
        WebToken(
            kind=kind,
            token_hash=_hash(token),
            identity_id=identity_id,
            person_id=person_id,
            expires_at=now + ttl if ttl else None,
            created_at=now,
        )
    )
    session.flush()
    return token


def find_token(session: Session, token: str, kind: str, now: datetime) -> WebToken | None:
    """The live row of a token: right kind, not used, not revoked, not expired."""
    if not token or len(token) > 100:
        return None
    row = session.exec(select(WebToken).where(WebToken.token_hash == _hash(token))).first()
    if row is None or row.kind != kind or row.used_at or row.revoked_at:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return row


def redeem_signin(session: Session, token: str, now: datetime) -> int | None:
    """Use a sign-in token once: the identity it signs in, or None (forged, used, expired).
    The conditional UPDATE makes two simultaneous uses yield one session."""
    row = find_token(session, token, SIGNIN, now)
    if row is None:
        return None
    from sqlalchemy import update

    done = session.connection().execute(
        update(WebToken)
        .where(WebToken.id == row.id, WebToken.used_at.is_(None))  # type: ignore[union-attr]
        .values(used_at=now)
    )
    return row.identity_id if done.rowcount == 1 else None


def load_viewer(session: Session, identity_id: int) -> Viewer | None:
    identity = session.get(Identity, identity_id)
    if identity is None:
        return None
    people = session.exec(
        select(Person).where(Person.identity_id == identity_id, Person.active)
    ).all()
    persons: dict[str, int] = {}
    roles: dict[str, frozenset[str]] = {}
    for person in people:
        assert person.id is not None
        held = {"official"}
        if person.admin:
            held.add("admin")
        if person.chief:
            held.add("leader")
        else:
            leads = session.exec(
                select(TaskMember.id)
                .where(TaskMember.person_id == person.id)
                .where(TaskMember.role.in_(("lead", "responsible")))  # type: ignore[attr-defined]
                .limit(1)
            ).first()
            if leads is not None:
                held.add("leader")
        persons[person.schedule_id] = person.id
        roles[person.schedule_id] = frozenset(held)
    return Viewer(identity.id or identity_id, identity.name, persons, roles)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(24)
        request.session[CSRF_FIELD] = token
    return str(token)


async def csrf_protect(request: Request) -> None:
    """On every unsafe method: the form field or header must equal the session's token."""
    if request.method not in UNSAFE:
        return
    expected = str(request.session.get(CSRF_FIELD) or "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # cached on the request: the endpoint reads it again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("csrf")


def sign_in(request: Request, identity_id: int, now: datetime) -> None:
    """Start a fresh session (a new CSRF token too: nothing carried over from before)."""
    request.session.clear()
    request.session["identity"] = identity_id
    request.session["since"] = now.isoformat()
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def optional_viewer(request: Request) -> Viewer | None:
    identity_id = request.session.get("identity")
    if not isinstance(identity_id, int):
        return None
    with session_scope(request.app.state.engine) as session:
        return load_viewer(session, identity_id)


def current_viewer(request: Request) -> Viewer:
    """The signed-in viewer; signed out, the request goes to the sign-in page."""
    viewer = optional_viewer(request)
    if viewer is None:
        raise SignedOut()
    return viewer


def require_role(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency for routes with a ``schedule_id`` path parameter: the viewer must hold
    one of ``roles`` in that schedule, else 403 (an unknown schedule looks the same)."""

    def check(schedule_id: str, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
        if not viewer.has(schedule_id, *roles):
            raise Forbidden(schedule_id)
        return viewer

    return check


require_admin = require_role("admin")
require_leader = require_role("admin", "leader")
require_member = require_role("admin", "leader", "official")
