"""A found item → its facts: owners by role, deadline, ongoing, recurrences, title.

Rules, in the order they apply:
- owners: each field is split into names; a unit named in a leader field goes to
  ``units``, a person in a unit field to ``responsible``; body and table are united;
- deadline: a deadline field (完成时限) beats any date in the text; without one, the
  latest date in the item's own text (staged dates end with the last);
- ongoing: no deadline, and the text says 长期 / 常态化 / 持续 …;
- recurrences: every frequency phrase in the item's texts, one per distinct shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

from bot.extract.dates import find_dates, latest, ongoing_word, read_deadline_field
from bot.extract.frequency import Frequency, find_frequencies
from bot.extract.labels import Role
from bot.extract.merge import similar
from bot.extract.numbering import Level, parse_number
from bot.extract.owners import Kind, same_name
from bot.extract.raw import Fields, RawItem

ROLE_NAMES = ("lead", "responsible", "units", "partners")


@dataclass
class Owners:
    lead: list[str] = field(default_factory=list)
    responsible: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)

    def get(self, role: str) -> list[str]:
        return getattr(self, role)

    def empty(self) -> bool:
        return not any(self.get(r) for r in ROLE_NAMES)

    def add(self, role: str, name: str) -> None:
        names = self.get(role)
        for index, known in enumerate(names):
            if same_name(known, name):
                if len(name) > len(known):
                    names[index] = name
                return
        names.append(name)

    def united(self, other: Owners) -> Owners:
        out = Owners(*(list(self.get(r)) for r in ROLE_NAMES))
        for role in ROLE_NAMES:
            for name in other.get(role):
                out.add(role, name)
        return out

    def names(self) -> list[str]:
        return [n for r in ROLE_NAMES for n in self.get(r)]


@dataclass(frozen=True)
class Note:
    """A remark for the reviewer, rendered from the extract catalogue: ``note_<key>``."""

    key: str
    context: tuple[tuple[str, str], ...] = ()

    def ctx(self) -> dict[str, str]:
        return dict(self.context)


@dataclass
class Recurrence:
    frequency: Frequency
    phrases: list[str]
    owners: Owners | None  # the measure's own owners, when its row named different ones


@dataclass
class Item:
    number: int
    ref: str
    title: str
    detail: str
    owners: Owners
    due: date | None
    ongoing: bool
    recurrences: list[Recurrence]
    lines: list[int]
    section: int | None = None
    part: int | None = None  # the numbered heading right above (一、 or （一）), see raw
    level: Level = Level.ITEM
    due_from: str = ""  # "field" | "text" | ""
    deadline_text: str = ""  # the document's deadline wording, verbatim
    notes: list[Note] = field(default_factory=list)

    @property
    def undated(self) -> bool:
        """No deadline, no recurrence, not ongoing: drafted as ``due: 待定``."""
        return self.due is None and not self.ongoing and not self.recurrences


NameReader = Callable[[str], list[tuple[str, Kind]]]

_FIELD_ROLE = {
    Role.LEAD: "lead",
    Role.RESPONSIBLE: "responsible",
    Role.OWNERS: "responsible",
    Role.UNITS: "units",
    Role.PARTNERS: "partners",
}


def owners_of(fields: Fields, read_names: NameReader) -> Owners:
    """Owner fields → owners by role, moving units out of leader fields and back."""
    owners = Owners()
    for role, target in _FIELD_ROLE.items():
        for value in fields.get(role, []):
            for name, kind in read_names(value):
                owners.add(_place(role, target, kind), name)
    return owners


def _place(role: Role, target: str, kind: Kind) -> str:
    if role is Role.PARTNERS:
        return "partners"
    if target in ("lead", "responsible"):
        if kind is Kind.UNIT or (role is Role.OWNERS and kind is Kind.UNKNOWN):
            return "units"
        return target
    if kind in (Kind.PERSON, Kind.GROUP):
        return "responsible"
    return "units"


_SENTENCE_END = re.compile(r"[。；;！!？?\n]")


def title_of(text: str, limit: int = 40) -> str:
    """The first sentence, cut at a comma or ``limit`` characters when it runs long."""
    text = text.strip()
    first = _SENTENCE_END.split(text, maxsplit=1)[0].strip() or text
    if len(first) <= limit:
        return first
    for mark in ("，", ","):
        cut = first.find(mark)
        if 8 <= cut <= limit:
            return first[:cut]
    return first[: limit - 1] + "…"


def _texts(twins: list[RawItem]) -> list[tuple[str, Fields | None]]:
    """Every text of the item with its row's fields when rows name different owners."""
    out: list[tuple[str, Fields | None]] = []
    for item in twins:
        out.append((item.text, None))
        distinct = {repr(sorted(p.fields.items())) for p in item.parts}
        specific = len(distinct) > 1
        out.extend((part.text, part.fields if specific else None) for part in item.parts)
    return out


def build_item(raw: RawItem, year: int, read_names: NameReader, *, year_known: bool = True) -> Item:
    """Read one item's facts; ``read_names`` splits and classifies an owner field.

    When the item is written twice (notice body and annex table), one copy is the source of
    each field — the table for owners, the table's deadline column when it has one — and
    what the other copy says differently becomes a review note, never a merged name.
    """
    twins = [raw, raw.other] if raw.other else [raw]
    prose_first = sorted(twins, key=lambda i: i.origin != "prose")
    table_first = sorted(twins, key=lambda i: i.origin != "table")
    per_origin = {item.origin: owners_of(item.fields, read_names) for item in twins}
    owners = next(
        (per_origin[i.origin] for i in table_first if not per_origin[i.origin].empty()), Owners()
    )
    notes: list[Note] = []
    if len(per_origin) == 2:
        notes.extend(_differences(per_origin["prose"], per_origin["table"]))
    if raw.inherited_from is not None:
        notes.append(Note("owners_inherited", (("number", str(raw.inherited_from)),)))
    if owners.empty():
        notes.append(Note("no_owner"))

    by_copy = [(i, list(dict.fromkeys(i.fields.get(Role.DEADLINE, [])))) for i in table_first]
    with_field = [(i, values) for i, values in by_copy if values]
    deadline_fields = with_field[0][1] if with_field else []
    if len(with_field) == 2:
        readings = [_field_reading(values, year) for _, values in with_field]
        if readings[0] != readings[1]:
            context = (
                ("table", "；".join(with_field[0][1])),
                ("prose", "；".join(with_field[1][1])),
            )
            notes.append(Note("deadline_differs", context))
    part_deadlines = [
        v for item in twins for part in item.parts for v in part.fields.get(Role.DEADLINE, [])
    ]
    due, ongoing = _field_reading(deadline_fields, year)
    deadline_text = "；".join(deadline_fields)
    due_from = "field" if due is not None else ""
    guessed = due is not None and not year_known and not _years_written(deadline_fields, year)
    texts = _texts(prose_first)
    if due is None and not ongoing:
        hits = [h for text, _ in texts for h in find_dates(text, year)]
        hits += [h for v in part_deadlines for h in find_dates(v, year, field=True)]
        last = latest(hits)
        if last is not None:
            due, due_from, deadline_text = last.value, "text", last.text
            guessed = not year_known and not last.explicit_year
    if due is None and not ongoing:
        word = next((w for text, _ in texts if (w := ongoing_word(text))), None)
        if word is not None:
            ongoing, deadline_text = True, word
    if guessed:
        notes.append(Note("year_guessed", (("year", str(year)),)))

    recurrences = _recurrences(texts, [*deadline_fields, *part_deadlines], owners, read_names)
    main = prose_first[0]
    detail_lines = [main.text.strip()]
    for item in twins:
        if item is not main and item.text.strip() and not similar(item.text, main.text, 0.8):
            detail_lines.append(item.text.strip())
        for part in item.parts:
            if part.text.strip() and part.text.strip() not in detail_lines:
                detail_lines.append(part.text.strip())
    return Item(
        number=raw.number,
        ref=str(raw.number) if raw.parent is None else f"{raw.parent}.{raw.number}",
        # a merged 工作任务 cell is empty below its first row: the row's 具体措施 names it
        title=title_of(main.text) or title_of(raw.text) or title_of(_first(detail_lines)),
        detail="\n".join(line for line in detail_lines if line),
        owners=owners,
        due=due,
        ongoing=ongoing,
        recurrences=recurrences,
        lines=[main.line, *(i.line for i in twins if i is not main)],
        section=raw.section,
        part=raw.part if raw.part is not None else raw.section,
        level=raw.level,
        due_from=due_from,
        deadline_text=deadline_text,
        notes=notes,
    )


def _field_reading(values: list[str], year: int) -> tuple[date | None, bool]:
    """A deadline field (or several rows of it): the latest date, else ongoing words."""
    due: date | None = None
    ongoing = False
    for value in values:
        read = read_deadline_field(value, year)
        if read.due and (due is None or read.due > due):
            due = read.due
        ongoing = ongoing or read.ongoing
    return due, (ongoing and due is None)


def _years_written(values: list[str], year: int) -> bool:
    return any(h.explicit_year for v in values for h in find_dates(v, year, field=True))


def _differences(prose: Owners, table: Owners) -> list[Note]:
    notes = []
    for role in ROLE_NAMES:
        a, b = prose.get(role), table.get(role)
        if (a or b) and not (
            all(any(same_name(x, y) for y in b) for x in a)
            and all(any(same_name(x, y) for x in a) for y in b)
        ):
            context = (
                ("role", role),
                ("prose", "、".join(a) or "—"),
                ("table", "、".join(b) or "—"),
            )
            notes.append(Note("owners_differ", context))
    return notes


def _recurrences(
    texts: list[tuple[str, Fields | None]],
    deadline_fields: list[str],
    owners: Owners,
    read_names: NameReader,
) -> list[Recurrence]:
    found: dict[tuple[str, int, str], Recurrence] = {}
    sources = [*((t, f, False) for t, f in texts), *((v, None, True) for v in deadline_fields)]
    for text, fields, is_deadline in sources:
        for frequency in find_frequencies(_unnumbered(text)):
            if is_deadline and frequency.times == 1 and _fold_into_text(frequency, found):
                continue  # 完成时限 "每月" / "每月5日前" names the period the text counts
            own = owners_of(fields, read_names) if fields else None
            if own is not None and (own.empty() or _covers(own, owners)):
                own = None
            known = found.get(frequency.key)
            if known is None:
                found[frequency.key] = Recurrence(frequency, [frequency.phrase], own)
            elif not any(similar(frequency.phrase, p, 0.8) for p in known.phrases):
                known.phrases.append(frequency.phrase)
    return list(found.values())


def _fold_into_text(frequency: Frequency, found: dict[tuple[str, int, str], Recurrence]) -> bool:
    """A deadline column's period the text already states a duty of: one duty, the text's
    count and the column's day ("每月开展1次" + "每月5日前" → month*1@day5)."""
    for key, known in list(found.items()):
        if key[0] != frequency.every:
            continue
        if frequency.by in (key[2], "end"):
            return True
        if key[2] == "end":
            del found[key]
            moved = replace(known.frequency, by=frequency.by)
            found.setdefault(moved.key, Recurrence(moved, known.phrases, known.owners))
            return True
    return False


def _unnumbered(text: str) -> str:
    number = parse_number(text)
    return number.rest if number else text


def _covers(part: Owners, item: Owners) -> bool:
    """The row names the same owners as the whole item: nothing specific to it."""
    return all(set(part.get(r)) == set(item.get(r)) for r in ROLE_NAMES)


def _first(lines: list[str]) -> str:
    return next((line for line in lines if line.strip()), "")
