"""People and units of a list (admins): who is bound on which platform, who cannot be
reached and why, unit contacts, and invite links with their QR codes.

An invite is :func:`bot.conversation.invites.create_invite`, the same as ``/invite`` in chat
and ``dutybot invite``; the link is the Telegram deep link when the bot's username is
configured, and the one-time code is what a WeCom member sends (``绑定 <code>``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from bot.adapters.telegram_links import start_link
from bot.conversation.invites import create_invite
from bot.identities import bindings_of
from bot.materialise import schedule_time
from bot.replies import Via
from bot.store.db import session_scope
from bot.store.models import Person, Schedule, Unit, UnitContact
from bot.texts import phrase
from bot.units import UnitRefused, set_unit_contacts
from bot.web.app import page
from bot.web.auth import Forbidden, Viewer, require_admin

router = APIRouter()
NAME_SPLIT = re.compile(r"[、,，;；\s]+")


def roster_view(session: Session, schedule_id: str) -> dict[str, Any]:
    """Every active person with their bindings, and every unit with its contacts."""
    people = list(
        session.exec(
            select(Person)
            .where(Person.schedule_id == schedule_id, col(Person.active).is_(True))
            .order_by(col(Person.id))
        )
    )
    rows = []
    for person in people:
        bound = (
            bindings_of(session, person.identity_id, reachable_only=False)
            if person.identity_id is not None
            else []
        )
        rows.append(
            {
                "person": person,
                "bindings": bound,
                "reachable": any(b.unreachable_reason is None for b in bound),
            }
        )
    names = {p.id: p.name for p in people}
    units = []
    for unit in session.exec(
        select(Unit).where(Unit.schedule_id == schedule_id, col(Unit.active).is_(True))
    ):
        contacts = session.exec(
            select(UnitContact.person_id)
            .where(UnitContact.unit_id == unit.id)
            .order_by(col(UnitContact.position))
        ).all()
        units.append(
            {"id": unit.id, "name": unit.name, "contacts": [names.get(c, "?") for c in contacts]}
        )
    return {
        "people": rows,
        "units": units,
        "unreachable": [r for r in rows if not r["reachable"]],
    }


@router.get("/s/{schedule_id}/people")
def people_page(
    request: Request, schedule_id: str, viewer: Annotated[Viewer, Depends(require_admin)]
) -> Response:
    with session_scope(request.app.state.engine) as session:
        schedule = session.get(Schedule, schedule_id)
        ctx = {"schedule": schedule, **roster_view(session, schedule_id)}
    params = request.query_params
    ctx["unit_saved"] = params.get("saved", "")
    ctx["unit_refused"] = (
        {"code": params.get("refused"), "names": params.get("names", "")}
        if params.get("refused")
        else None
    )
    return page(request, "people.html", ctx)


@router.post("/s/{schedule_id}/units/{unit_id}/contacts")
def unit_contacts(
    request: Request,
    schedule_id: str,
    unit_id: int,
    viewer: Annotated[Viewer, Depends(require_admin)],
    contacts: Annotated[str, Form()] = "",
) -> Response:
    """Set or change a unit's contacts (bot.units: the file stays the list's source)."""
    names = [n for n in NAME_SPLIT.split(contacts) if n]
    back = f"/s/{schedule_id}/people"
    try:
        with session_scope(request.app.state.engine) as session:
            set_unit_contacts(
                session,
                schedule_id=schedule_id,
                unit_id=unit_id,
                names=names,
                person_id=viewer.person_in(schedule_id),
                now=request.app.state.clock.now(),
                via=Via("web"),
            )
    except UnitRefused as refused:
        tail = quote("、".join(refused.names))
        return RedirectResponse(f"{back}?refused={refused.code}&names={tail}", status_code=303)
    return RedirectResponse(f"{back}?saved={unit_id}#unit-{unit_id}", status_code=303)


@router.post("/s/{schedule_id}/people/{person_id}/invite")
def invite(
    request: Request,
    schedule_id: str,
    person_id: int,
    viewer: Annotated[Viewer, Depends(require_admin)],
) -> Response:
    """A one-time invite for one person of this list: link, QR code and code, shown once."""
    settings = request.app.state.settings
    lang = str(settings.lang)
    now = request.app.state.clock.now()
    username = (settings.telegram_bot_username or "").lstrip("@") or None
    wecom = bool(settings.wecom_corp_id) and settings.wecom_secret is not None
    with session_scope(request.app.state.engine) as session:
        person = session.get(Person, person_id)
        schedule = session.get(Schedule, schedule_id)
        if person is None or person.schedule_id != schedule_id or not person.active:
            raise Forbidden(schedule_id)
        assert schedule is not None
        issued: dict[str, Any] | None = None
        if username or wecom:
            token, row = create_invite(
                session,
                person=person,
                now=now,
                ttl=timedelta(hours=settings.invite_ttl_hours),
                actor=f"person:{viewer.person_in(schedule_id)}",
                channel="web",
            )
            link = start_link(username, token) if username else None
            issued = {
                "name": person.name,
                "link": link,
                "qr": segno.make(link, error="m").svg_inline(scale=4) if link else None,
                "wecom": phrase("wecom", "bind_instruction", lang, token=token) if wecom else None,
                "expires": row.expires_at.astimezone(schedule_time(schedule).tz),
            }
        ctx = {
            "schedule": schedule,
            **roster_view(session, schedule_id),
            "issued": issued,
            "refused": None if issued else phrase("chat_refusals", "no_invite_link", lang),
        }
    return page(request, "people.html", ctx)
