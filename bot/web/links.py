"""The URLs the web app hands out: one-time sign-in links, calendar feeds, one-tap actions.

One place makes each kind, whoever asks for it (``dutybot login-link``, the ``/web`` chat
command, ``dutybot ics``, an adapter rendering a button as a link), so every link of a kind
looks and expires alike.  Tokens live in ``webtoken`` (bot.web.auth); action links are
signed like buttons (bot.signing), with a secret every process derives alike from the
settings.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.identities import identity_of
from bot.settings import Settings
from bot.signing import Signer, derive_secret
from bot.store.models import Person, WebToken
from bot.web.auth import FEED, SIGNIN, issue_token

ACTION_LINK_DAYS = 30  # a one-tap link in a chat works this long (the reminder is stale by then)
LINK_ACTIONS = ("done", "progress", "extend")


class UnknownName(LookupError):
    """No active person of that name (in that schedule)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class AmbiguousName(LookupError):
    """Several people of that name: the schedules they are in, to choose with --schedule."""

    def __init__(self, name: str, schedules: list[str]) -> None:
        super().__init__(name, schedules)
        self.name, self.schedules = name, schedules


def person_named(session: Session, name: str, schedule_id: str | None = None) -> Person:
    """The one active person of that name; several in lists of one identity count as one."""
    query = select(Person).where(Person.name == name, col(Person.active).is_(True))
    if schedule_id:
        query = query.where(Person.schedule_id == schedule_id)
    people = list(session.exec(query.order_by(col(Person.schedule_id))).all())
    if not people:
        raise UnknownName(name)
    identities = {p.identity_id for p in people}
    if len(people) > 1 and (None in identities or len(identities) > 1):
        raise AmbiguousName(name, sorted(p.schedule_id for p in people))
    return people[0]


def public_url(settings: Settings, path: str) -> str:
    """``path`` under the public base URL people open (DUTYBOT_WEB_URL)."""
    return settings.web_url.rstrip("/") + path


def signin_link(
    session: Session, *, person: Person, base_url: str, minutes: float, now: datetime
) -> str:
    """A one-time sign-in URL for the person's identity (``minutes`` long, single use);
    ``base_url`` is DUTYBOT_WEB_URL (the conversation has it in its ChatConfig)."""
    identity_id = identity_of(session, person, now)
    token = issue_token(
        session,
        identity_id=identity_id,
        kind=SIGNIN,
        now=now,
        ttl=timedelta(minutes=minutes),
    )
    return base_url.rstrip("/") + f"/login/{token}"


def revoke_feeds(session: Session, *, identity_id: int, now: datetime) -> int:
    """End every live calendar feed of an identity; returns how many there were."""
    done = session.connection().execute(
        update(WebToken)
        .where(
            col(WebToken.identity_id) == identity_id,
            col(WebToken.kind) == FEED,
            col(WebToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    return int(done.rowcount or 0)


def feed_link(session: Session, *, person: Person, settings: Settings, now: datetime) -> str:
    """A new calendar feed URL for the person's identity; any earlier one stops working
    (one live feed per identity: a leaked URL is fixed by asking for a new one)."""
    identity_id = identity_of(session, person, now)
    revoke_feeds(session, identity_id=identity_id, now=now)
    token = issue_token(session, identity_id=identity_id, kind=FEED, now=now, ttl=None)
    return public_url(settings, f"/ics/{token}.ics")


def link_signer(settings: Settings) -> Signer:
    """The signer of one-tap links: the callback secret, else one derived from the first
    configured platform secret -- the same in every process of one installation."""
    if settings.callback_secret is not None:
        return Signer(settings.callback_secret.get_secret_value())
    for base in (
        settings.telegram_token,
        settings.wecom_secret,
        settings.dingtalk_client_secret,
        settings.web_secret,
    ):
        if base is not None:
            return Signer(derive_secret(base.get_secret_value(), "action-link"))
    raise ValueError("one-tap links need DUTYBOT_CALLBACK_SECRET (or a platform secret)")


def action_link(
    settings: Settings,
    *,
    action: str,
    occurrence_id: int,
    person_id: int,
    today: date,
    days: int = ACTION_LINK_DAYS,
) -> str:
    """The one-tap URL that opens the page of ``action`` (done, progress, extend)."""
    if action not in LINK_ACTIONS:
        raise ValueError(f"no one-tap page for {action!r}")
    data = link_signer(settings).sign_link(
        action, occurrence_id, person_id, today + timedelta(days=days)
    )
    return public_url(settings, f"/a/{data}")
