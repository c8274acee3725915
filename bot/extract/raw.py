"""Numbered items as found, before their fields are read: what prose and tables share."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.extract.labels import Role
from bot.extract.numbering import Level

Fields = dict[Role, list[str]]  # role → raw field texts ("熊伟、李道波"), in order found


@dataclass
class Part:
    """A measure (操作要点 (1), (2) …) or any text that belongs to an item, with its owners."""

    text: str
    line: int
    fields: Fields = field(default_factory=dict)


@dataclass
class RawItem:
    number: int
    level: Level
    line: int
    text: str  # the item's own text (task column, or the prose body without its tail)
    origin: str  # "prose" | "table"
    section: int | None = None
    fields: Fields = field(default_factory=dict)  # owners / deadline over all its rows
    parts: list[Part] = field(default_factory=list)
    inherited_from: int | None = None  # owners copied from this item (merged cell above)
    parent: int | None = None  # "(2)" under the heading "3.强化企业主体责任。": 3, ref "3.2"
    part: int | None = None  # the numbered heading above ("（二）…"), for refs that repeat
    other: RawItem | None = None  # the same item found in the other place (prose ↔ table)

    def add_fields(self, fields: Fields) -> None:
        for role, values in fields.items():
            bucket = self.fields.setdefault(role, [])
            bucket.extend(v for v in values if v not in bucket)

    def has_owner_fields(self) -> bool:
        from bot.extract.labels import OWNER_ROLES

        return any(v.strip() for r in OWNER_ROLES for v in self.fields.get(r, []))


@dataclass(frozen=True)
class Unplaced:
    """Something that looked like a duty but did not become a task: shown to the reviewer."""

    line: int
    text: str
    reason: str  # a key of the extract catalogue: unplaced_<reason>
