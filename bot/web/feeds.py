"""``/ics/<token>.ics``: a person's duties as a calendar feed at a secret, revocable URL.

The token is a ``webtoken`` row of kind ``feed`` (bot.web.links makes it, ``dutybot ics``
prints it); calendar apps poll the URL, so it needs no session.  The calendar itself is
the one ``dutybot ics -o`` writes (bot.reports.ics), built from the store at each poll: a
completion in chat shows as STATUS:COMPLETED at the next refresh.  A revoked or unknown
token is a bare 404: nothing says whether it ever existed.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from bot.reports.ics import DutyEvent, UnknownPerson, build_calendar, person_events
from bot.reports.records import load_records
from bot.store.db import session_scope
from bot.store.models import Identity, Person
from bot.web.auth import FEED, find_token

router = APIRouter()
MEDIA_TYPE = "text/calendar; charset=utf-8"


def identity_calendar(
    session: Session, identity_id: int, *, now: datetime, lang: str
) -> bytes | None:
    """Every duty of the identity's people across their lists, as iCalendar bytes."""
    people = session.exec(
        select(Person)
        .where(Person.identity_id == identity_id, col(Person.active).is_(True))
        .order_by(col(Person.schedule_id))
    ).all()
    identity = session.get(Identity, identity_id)
    if identity is None:
        return None
    events: list[DutyEvent] = []
    timezone = "Asia/Shanghai"
    for person in people:
        records = load_records(session, person.schedule_id)
        if records:
            timezone = records[0].schedule.timezone
        try:
            events += person_events(records, person.name, lang)
        except UnknownPerson:  # named in the list, chased by none of its tasks
            continue
    name = people[0].name if people else identity.name
    calendar = build_calendar(events, now=now, person=name, timezone=timezone, lang=lang)
    return bytes(calendar.to_ical())


@router.api_route("/ics/{token}.ics", methods=["GET", "HEAD"])  # some calendar apps HEAD first
def feed(request: Request, token: str) -> Response:
    state = request.app.state
    now = state.clock.now()
    with session_scope(state.engine) as session:
        row = find_token(session, token, FEED, now)
        body = (
            identity_calendar(session, row.identity_id, now=now, lang=state.settings.lang)
            if row is not None
            else None
        )
    if body is None:
        return Response(status_code=404)
    headers = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"}
    return Response(body, media_type=MEDIA_TYPE, headers=headers)
