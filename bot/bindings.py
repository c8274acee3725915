"""Who can be reached where, and binding people through their organisation's directory.

Platform-neutral: a platform that can look people up (DingTalk by declared userid or by
mobile, WeCom likewise) exposes ``resolver(settings) -> Resolve | None`` in its module (the one
bot.adapters registers); ``dutybot bindings`` lists each person's state per platform and,
with ``--resolve``, binds those the directory resolves (``via="directory"``) through
:func:`bot.identities.bind`.  Invites stay the way in for everyone else.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.identities import bind, bindings_of
from bot.store.models import AuditEvent, Person

# Looks a person up in a platform's directory: their account (the chat to send to), or None.
Resolve = Callable[[Person], Awaitable[str | None]]

BOUND, UNREACHABLE, DECLARED, MOBILE, UNRESOLVED = (
    "bound",
    "unreachable",
    "declared",
    "mobile",
    "unresolved",
)


@dataclass(frozen=True)
class Standing:
    """One person's state on one platform."""

    person_id: int
    name: str
    schedule_id: str
    platform: str
    state: str  # bound | unreachable | declared | mobile | unresolved
    account: str | None = None  # the bound chat, or the declared account
    reason: str | None = None  # why a binding is unreachable


def standings(session: Session, *, platform: str, schedule_id: str | None = None) -> list[Standing]:
    """Every active person of the schedule(s) and where they stand on ``platform``."""
    query = select(Person).where(col(Person.active).is_(True))
    if schedule_id:
        query = query.where(Person.schedule_id == schedule_id)
    people = list(session.exec(query.order_by(col(Person.schedule_id), col(Person.id))).all())
    found: list[Standing] = []
    for person in people:
        assert person.id is not None
        accounts: dict[str, Any] = person.accounts or {}
        here = [
            b
            for b in (
                bindings_of(session, person.identity_id, reachable_only=False)
                if person.identity_id is not None
                else []
            )
            if b.platform == platform
        ]
        base = {
            "person_id": person.id,
            "name": person.name,
            "schedule_id": person.schedule_id,
            "platform": platform,
        }
        if here and here[0].unreachable_reason is None:
            found.append(Standing(**base, state=BOUND, account=here[0].chat_id))
        elif here:
            reason = here[0].unreachable_reason
            found.append(
                Standing(**base, state=UNREACHABLE, account=here[0].chat_id, reason=reason)
            )
        elif accounts.get(platform):
            found.append(Standing(**base, state=DECLARED, account=str(accounts[platform])))
        elif accounts.get("mobile"):
            found.append(Standing(**base, state=MOBILE))
        else:
            found.append(Standing(**base, state=UNRESOLVED))
    return found


def resolver_for(platform: str, settings: Any) -> Resolve | None:
    """The platform's directory lookup, when it has one and the settings configure it."""
    from bot.adapters import PLATFORMS

    entry = PLATFORMS.get(platform)
    if entry is None or not entry.configured(settings):
        return None
    module: Any = importlib.import_module(entry.module)
    make = getattr(module, "resolver", None)
    return make(settings) if make is not None else None


@dataclass(frozen=True)
class Resolved:
    person_id: int
    name: str
    account: str | None  # None: the directory does not know them


async def look_up(
    people: list[Standing], resolve: Resolve, load: Callable[[int], Person]
) -> list[Resolved]:
    """Ask the directory about everyone not bound yet (outside any transaction: a slow
    directory must not hold a database lock)."""
    found: list[Resolved] = []
    try:
        for standing in people:
            if standing.state not in (DECLARED, MOBILE):
                continue
            account = await resolve(load(standing.person_id))
            found.append(Resolved(standing.person_id, standing.name, account))
    finally:
        close = getattr(resolve, "aclose", None)
        if close is not None:
            await close()
    return found


def bind_resolved(
    session: Session, *, platform: str, resolved: list[Resolved], now: datetime, actor: str
) -> int:
    """Bind every person the directory found; each binding is an audit event."""
    bound = 0
    for item in resolved:
        if not item.account:
            continue
        person = session.get(Person, item.person_id)
        if person is None or not person.active:
            continue
        result = bind(
            session,
            person=person,
            platform=platform,
            chat_id=item.account,
            user_id=item.account,
            now=now,
            via="directory",
        )
        if not result.new:
            continue
        bound += 1
        session.add(
            AuditEvent(
                at=now,
                actor=actor,
                action="chat_bound",
                schedule_id=person.schedule_id,
                person_id=person.id,
                channel="cli",
                platform=platform,
                detail={
                    "person": person.name,
                    "platform": platform,
                    "via": "directory",
                    "binding": result.binding.id,
                    "replaced_identity": result.replaced,
                    "merged_identity": result.merged_from,
                },
            )
        )
    return bound


def run_bindings(settings: Any, schedule_id: str | None, platform: str, *, resolve: bool) -> int:
    """``dutybot bindings``: the listing (and, with ``resolve``, the directory binding);
    the exit code."""
    import asyncio

    import typer

    from bot.adapters import PLATFORMS
    from bot.clock import SystemClock
    from bot.store.db import open_store, session_scope
    from bot.store.models import Schedule
    from bot.texts import render

    lang = settings.lang

    def say(key: str, err: bool = False, **context: Any) -> None:
        typer.echo(render("bindings", lang, key=key, **context), err=err)

    if platform not in PLATFORMS and platform != "console":
        say("unknown_platform", err=True, platform=platform, known=sorted(PLATFORMS))
        return 2
    engine = open_store(settings.database_url)
    try:
        with session_scope(engine) as session:
            if schedule_id and session.get(Schedule, schedule_id) is None:
                say("unknown_schedule", err=True, schedule=schedule_id)
                return 1
            rows = standings(session, platform=platform, schedule_id=schedule_id)
            session.expunge_all()
        bound = 0
        if resolve:
            lookup = resolver_for(platform, settings)
            if lookup is None:
                say("no_directory", err=True, platform=platform)
                return 2

            def load(person_id: int) -> Person:
                with session_scope(engine) as session:
                    person = session.get(Person, person_id)
                    assert person is not None
                    session.expunge(person)
                    return person

            try:
                found = asyncio.run(look_up(rows, lookup, load))
            except Exception as exc:  # the directory is down or refuses: say so, change nothing
                say("directory_failed", err=True, platform=platform, reason=_reason(exc))
                return 1
            now = SystemClock().now()  # the command line is the edge where the clock is read
            with session_scope(engine) as session:
                bound = bind_resolved(
                    session, platform=platform, resolved=found, now=now, actor="cli"
                )
                rows = standings(session, platform=platform, schedule_id=schedule_id)
                session.expunge_all()
        say("listing", rows=rows, platform=platform, resolved=resolve, bound=bound)
        return 0
    finally:
        engine.dispose()


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or type(exc).__name__)[:200]
