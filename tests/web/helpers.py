"""Shared by the web tests: a real list imported and people bound, sign-in links by name."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from bot.identities import identity_of
from bot.store.db import session_scope
from bot.store.models import Person
from bot.web.auth import SIGNIN, issue_token
from tests.fakes.outbox import seed_bound


def seed_list(engine: Engine, imported: datetime, platform: str = "memory") -> dict[str, int]:
    """fengdu-ndrc-2022 imported with everyone bound on ``platform``: name → person id."""
    return seed_bound(engine, platform=platform, imported=imported)


def signin_link(engine: Engine, name: str, now: datetime) -> str:
    """A fresh one-time sign-in path for the person of this name."""
    with session_scope(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        identity_id = identity_of(session, person, now)
        token = issue_token(
            session, identity_id=identity_id, kind=SIGNIN, now=now, ttl=timedelta(minutes=15)
        )
    return f"/login/{token}"
