"""Who is chased for a task, resolved once per schedule from the store.

assignees = the contacts of the task's units, plus its responsible officials; if that is
empty, its lead.  Escalation steps name roles (assignees, responsible, lead, chief,
admins) or a person's name; partners are informed, never chased.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, select

from bot.store.models import Person, Schedule, TaskMember, Unit, UnitContact

_CACHE: dict[tuple[str, str], tuple[tuple[datetime, str], Roster]] = {}
_CACHE_LOCK = threading.Lock()


class Member(Protocol):
    """What a roster reads of a task member (a TaskMember, or a plain row of its columns)."""

    task_id: int
    role: str
    person_id: int | None
    unit_id: int | None


@dataclass
class Roster:
    people: dict[int, Person]
    unit_names: dict[int, str]
    unit_contacts: dict[int, list[int]]
    members: dict[int, list[Member]] = field(default_factory=dict)
    # plain indexes built once (a roster is cached across ticks and read for every due row:
    # ORM attribute access per member per row was a third of a due tick)
    _roles: dict[tuple[int, str], list[int]] = field(init=False, repr=False)
    _units: dict[int, list[int]] = field(init=False, repr=False)
    _live: frozenset[int] = field(init=False, repr=False)
    _by_name: dict[str, int] = field(init=False, repr=False)
    _chief: list[int] = field(init=False, repr=False)
    _admins: list[int] = field(init=False, repr=False)
    _resolved: dict[tuple[int, tuple[str, ...]], tuple[int, ...]] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._roles, self._units = defaultdict(list), defaultdict(list)
        for task_id, rows in self.members.items():
            for m in rows:
                if m.role == "unit":
                    if m.unit_id:
                        self._units[task_id].append(m.unit_id)
                elif m.person_id:
                    self._roles[(task_id, m.role)].append(m.person_id)
        self._live = frozenset(pid for pid, p in self.people.items() if p.active)
        self._by_name = {p.name: pid for pid, p in self.people.items() if p.active}
        self._chief = [pid for pid, p in self.people.items() if p.chief and p.active]
        self._admins = [pid for pid, p in self.people.items() if p.admin and p.active]

    @classmethod
    def load(cls, session: Session, schedule_id: str) -> Roster:
        people = {
            p.id: p for p in session.exec(select(Person).where(Person.schedule_id == schedule_id))
        }
        units = {
            u.id: u.name for u in session.exec(select(Unit).where(Unit.schedule_id == schedule_id))
        }
        contacts: dict[int, list[int]] = defaultdict(list)
        rows = session.exec(
            select(UnitContact)
            .where(col(UnitContact.unit_id).in_(list(units)))
            .order_by(UnitContact.position)
        )
        for row in rows:
            contacts[row.unit_id].append(row.person_id)
        members: dict[int, list[Member]] = defaultdict(list)
        person_ids = [pid for pid in people if pid is not None]
        unit_ids = list(units)
        # plain rows, not ORM objects: a 10k-task list has tens of thousands of members
        query = select(
            TaskMember.task_id, TaskMember.role, TaskMember.person_id, TaskMember.unit_id
        ).where(col(TaskMember.person_id).in_(person_ids) | col(TaskMember.unit_id).in_(unit_ids))
        for member in session.execute(query.order_by(TaskMember.position)):
            members[member.task_id].append(member)
        return cls(
            {k: v for k, v in people.items() if k is not None}, units, dict(contacts), dict(members)
        )

    @classmethod
    def cached(cls, session: Session, schedule: Schedule) -> Roster:
        """The roster as of the schedule's last import, read once per import and process: a
        tick with ten due rows must not read every member row of a 10k-task list again.
        Everything a roster holds changes only through an import (which stamps the schedule)."""
        bind = session.get_bind()
        engine = getattr(bind, "engine", bind)  # a Connection (a rehearsal) has its engine
        key = (str(engine.url), schedule.id)
        stamp = (schedule.imported_at, schedule.content_hash)
        with _CACHE_LOCK:
            found = _CACHE.get(key)
        if found is not None and found[0] == stamp:
            return found[1]
        roster = cls.load(session, schedule.id)
        with _CACHE_LOCK:
            _CACHE[key] = (stamp, roster)
        return roster

    def _role(self, task_id: int, role: str) -> list[int]:
        return self._roles.get((task_id, role), [])

    def lead(self, task_id: int) -> list[int]:
        return self._active(self._role(task_id, "lead"))

    def responsible(self, task_id: int) -> list[int]:
        return self._active(self._role(task_id, "responsible"))

    def units(self, task_id: int) -> list[int]:
        return list(self._units.get(task_id, ()))

    def partners(self, task_id: int) -> list[int]:
        """Partner people, and the contacts of partner units."""
        found: list[int] = []
        for m in self.members.get(task_id, []):
            if m.role == "partner":
                found += (
                    [m.person_id] if m.person_id else self.unit_contacts.get(m.unit_id or 0, [])
                )
        return self._active(found)

    def assignees(self, task_id: int) -> list[int]:
        found = [pid for uid in self.units(task_id) for pid in self.unit_contacts.get(uid, [])]
        found = self._active(found + self.responsible(task_id))
        return found or self.lead(task_id)

    def chief(self) -> list[int]:
        return list(self._chief)

    def admins(self) -> list[int]:
        return list(self._admins)

    def resolve(self, task_id: int, targets: Sequence[str]) -> list[int]:
        """Escalation/digest targets (roles or names) as person ids, in order, once each
        (remembered: a roster does not change until the next import, and a due tick asks
        the same few questions for every row of a task)."""
        key = (task_id, tuple(targets))
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = tuple(self._resolve(task_id, targets))
        return list(found)

    def _resolve(self, task_id: int, targets: Sequence[str]) -> list[int]:
        by_name = self._by_name
        roles = {
            "assignees": lambda: self.assignees(task_id),
            "responsible": lambda: self.responsible(task_id),
            "lead": lambda: self.lead(task_id),
            "chief": self.chief,
            "admins": self.admins,
        }
        found: list[int] = []
        for target in targets:
            found += (
                roles[target]()
                if target in roles
                else [by_name[target]]
                if target in by_name
                else []
            )
        return self._active(found)

    def names(self, person_ids: list[int]) -> list[str]:
        return [self.people[pid].name for pid in person_ids if pid in self.people]

    def unit_list(self, task_id: int) -> list[str]:
        return [self.unit_names[uid] for uid in self.units(task_id) if uid in self.unit_names]

    def _active(self, ids: list[int]) -> list[int]:
        live = self._live
        seen: list[int] = []
        for pid in ids:
            if pid in live and pid not in seen:
                seen.append(pid)
        return seen
