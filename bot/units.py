"""A unit's contacts (联络员) changed outside an import: from the web console.

The schedule file stays the list's source: the change moves the list's content hash, so
every process's roster (:meth:`bot.roster.Roster.cached`, stamped by the hash) is read
again at once, and re-importing the old file is a change again -- its preview shows the
contacts going back (``单位联络员变更``).  Put the new contacts in the file to keep them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import Session, col, select

from bot.replies import Via
from bot.schedule.importer import replace_contacts
from bot.store.models import AuditEvent, Person, Schedule, Unit


class UnitRefused(Exception):
    """``code``: unknown_unit | unknown_people (``names`` lists who is not on the list)."""

    def __init__(self, code: str, names: list[str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.names = names or []


def set_unit_contacts(
    session: Session,
    *,
    schedule_id: str,
    unit_id: int,
    names: list[str],
    person_id: int | None,
    now: datetime,
    via: Via,
) -> bool:
    """Make ``names`` (active people of the list, in order) the unit's contacts; False when
    they already were.  Audited as ``unit_contacts_changed``."""
    unit = session.get(Unit, unit_id)
    schedule = session.get(Schedule, schedule_id)
    if unit is None or schedule is None or unit.schedule_id != schedule_id or not unit.active:
        raise UnitRefused("unknown_unit")
    people = {
        p.name: p.id
        for p in session.exec(
            select(Person).where(Person.schedule_id == schedule_id, col(Person.active).is_(True))
        )
    }
    missing = [n for n in names if n not in people]
    if missing:
        raise UnitRefused("unknown_people", missing)
    wanted = list(dict.fromkeys(people[n] for n in names))
    if not replace_contacts(session, unit, wanted):
        return False
    schedule.content_hash = hashlib.sha256(
        f"{schedule.content_hash}:contacts:{unit.id}:{wanted}:{now.isoformat()}".encode()
    ).hexdigest()
    session.add(schedule)
    session.add(
        AuditEvent(
            at=now,
            actor=f"person:{person_id}" if person_id else via.channel,
            action="unit_contacts_changed",
            schedule_id=schedule_id,
            person_id=person_id,
            channel=via.channel,
            platform=via.platform,
            message_ref=via.message_ref,
            detail={"unit": unit.name, "contacts": list(dict.fromkeys(names))},
        )
    )
    return True
