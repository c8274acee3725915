"""Binding without invites: the userid (or mobile) a schedule declares for a person.

``people: {张敏: {wecom: zhangmin}}`` binds 张敏 to the member ``zhangmin`` (``via=directory``);
a person with only ``mobile:`` is looked up with 通过手机号获取其所属的userid
(``POST /cgi-bin/user/getuserid``, https://developer.work.weixin.qq.com/document/path/95402).
A declared userid is checked with 读取成员 (``GET /cgi-bin/user/get``, path/90196) when the app
may read it: 60111 (no such member) or 60011 / 81013 (outside the app's visible range) leave
the person unresolved, with the reason, for the admin command to list; an app without the
contacts permission (48002, 60011 on every member) still binds what the schedule declares, and
a wrong userid then shows at the first send (81013: that binding unreachable, admins told).

:func:`resolve` is the per-platform hook of the admin bindings command; :func:`bind_declared`
binds everyone resolvable (``dutybot run`` calls it when the WeCom frontend starts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine as DbEngine
from sqlmodel import Session, col, select

from bot.adapters.wecom.api import WeComApi, WeComApiError
from bot.identities import bind
from bot.store.db import session_scope
from bot.store.models import ChatBinding, Person

log = logging.getLogger("dutybot.wecom")

PLATFORM = "wecom"
NOT_FOUND = frozenset({60111, 40003, 46004})
OUT_OF_RANGE = frozenset({60011, 81013})
CANNOT_CHECK = frozenset({48002, 60011})


@dataclass(frozen=True)
class Resolution:
    """Whom a person is on WeCom: a userid, or why not (``problem``: a short code)."""

    person_id: int
    name: str
    userid: str | None
    how: str  # declared | mobile | none
    problem: str | None = None  # not_found | out_of_range | unchecked | no_account


async def resolve(api: WeComApi, person: Person) -> Resolution:
    """The WeCom userid of ``person`` from what the schedule declares (no store access)."""
    assert person.id is not None
    accounts = person.accounts or {}
    declared, mobile = accounts.get("wecom"), accounts.get("mobile")
    if declared:
        try:
            await api.call("/cgi-bin/user/get", params={"userid": str(declared)})
        except WeComApiError as exc:
            if exc.errcode in NOT_FOUND:
                return Resolution(person.id, person.name, None, "declared", "not_found")
            if exc.errcode in OUT_OF_RANGE - CANNOT_CHECK:
                return Resolution(person.id, person.name, None, "declared", "out_of_range")
            # the app may not read contacts: bind what the schedule says
            return Resolution(person.id, person.name, str(declared), "declared", "unchecked")
        return Resolution(person.id, person.name, str(declared), "declared")
    if mobile:
        try:
            data = await api.call("/cgi-bin/user/getuserid", json={"mobile": str(mobile)})
        except WeComApiError as exc:
            problem = "not_found" if exc.errcode in NOT_FOUND else "unchecked"
            return Resolution(person.id, person.name, None, "mobile", problem)
        return Resolution(person.id, person.name, str(data["userid"]), "mobile")
    return Resolution(person.id, person.name, None, "none", "no_account")


def unbound_declared(session: Session) -> list[Person]:
    """Active people with a WeCom userid or a mobile whose identity has no WeCom chat yet."""
    bound = select(ChatBinding.identity_id).where(
        ChatBinding.platform == PLATFORM, col(ChatBinding.active).is_(True)
    )
    people = session.exec(
        select(Person)
        .where(col(Person.active).is_(True), col(Person.accounts).is_not(None))
        .where(col(Person.identity_id).is_(None) | col(Person.identity_id).not_in(bound))
        .order_by(col(Person.id))
    ).all()
    return [
        p for p in people if {"wecom", "mobile"} & {k for k, v in (p.accounts or {}).items() if v}
    ]


async def bind_declared(*, db: DbEngine, api: WeComApi, now: datetime) -> list[Resolution]:
    """Resolve and bind everyone the schedules declare a WeCom account for.  API calls happen
    outside any transaction; each binding is written in one."""
    with Session(db) as session:
        people = unbound_declared(session)
        for person in people:
            session.expunge(person)
    found = [await resolve(api, person) for person in people]
    with session_scope(db) as session:
        for resolution in found:
            person = session.get(Person, resolution.person_id)
            if resolution.userid and person is not None:
                bind(
                    session,
                    person=person,
                    platform=PLATFORM,
                    chat_id=resolution.userid,
                    user_id=resolution.userid,
                    now=now,
                    via="directory",
                )
    bound = sum(1 for r in found if r.userid)
    if found:
        log.info("WeCom: %d of %d declared accounts bound", bound, len(found))
    return found
