"""Extraction → a draft schedule (format v1) as YAML, with the reviewer's comments in it.

The draft always validates: every name it uses is defined under ``people`` or ``units``
(people for leaders, units with ``contacts: []``), each task has exactly one of
``due`` / ``every`` / ``ongoing``; an item the document gives no deadline is ``due: 待定``
(never guessed as ongoing), and ``deadline_text`` keeps the wording a date was read from.
An item with a deadline and recurring duties stays a
``due`` task and its duties become sub-tasks ``N.1``, ``N.2`` until that deadline; an item
with no deadline and one duty is itself the ``every`` task; with several, only the
sub-tasks are written.  All comment text comes from message_templates/.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from bot.extract.items import ROLE_NAMES, Item, Note, Owners, Recurrence, title_of
from bot.extract.owners import Kind, classify
from bot.extract.pipeline import Extraction
from bot.schedule.format import PENDING
from bot.texts import phrase, render

_EXCERPT = 60


def _say(key: str, lang: str | None, **context: Any) -> str:
    return phrase("extract", key, lang, **context)


def _flow(items: Iterable[Any]) -> CommentedSeq:
    seq = CommentedSeq(list(items))
    seq.fa.set_flow_style()
    return seq


def _flow_map(**values: Any) -> CommentedMap:
    mapping = CommentedMap(values)
    mapping.fa.set_flow_style()
    return mapping


def _default_policy() -> CommentedMap:
    policy = CommentedMap()
    policy["remind"] = _flow([-7, -3, -1, 0])
    escalate = CommentedSeq(
        [
            _flow_map(after=1, to=_flow(["assignees", "responsible"])),
            _flow_map(after=3, to=_flow(["lead"])),
            _flow_map(after=5, to=_flow(["chief"]), repeat=5),
        ]
    )
    policy["escalate"] = escalate
    policy["digest"] = _flow_map(
        at=DoubleQuotedScalarString("08:30"), on="workdays", to=_flow(["lead", "chief"])
    )
    policy["evidence"] = "optional"
    policy["ongoing_check"] = "month"
    return policy


def _text(value: str) -> str:
    return LiteralScalarString(value) if "\n" in value else value


def _source(name: str, line: int) -> str:
    return DoubleQuotedScalarString(f"{name}:{line}")


def _owners_into(task: CommentedMap, owners: Owners) -> None:
    for role in ROLE_NAMES:
        names = owners.get(role)
        if names:
            task[role] = _flow(names)


def _task(ref: str, title: str, detail: str | None, owners: Owners, source: str) -> CommentedMap:
    task = CommentedMap()
    task["ref"] = DoubleQuotedScalarString(ref)
    task["title"] = title
    if detail and detail.strip() != title.strip():
        task["detail"] = _text(detail)
    _owners_into(task, owners)
    return task


def _recurring(task: CommentedMap, recurrence: Recurrence, until: date | None) -> None:
    frequency = recurrence.frequency
    task["every"] = frequency.every
    if frequency.times != 1:
        task["times"] = frequency.times
    if frequency.by != "end":
        task["by"] = frequency.by
    if until is not None:
        task["until"] = until


def _subtasks(
    item: Item, name: str, until: date | None, taken: set[str] | frozenset[str] = frozenset()
) -> list[CommentedMap]:
    """One task per recurring duty, "N.1", "N.2" … (skipping refs other items hold)."""
    out = []
    number = 0
    for recurrence in item.recurrences:
        number += 1
        while f"{item.ref}.{number}" in taken:
            number += 1
        ref = f"{item.ref}.{number}"
        detail = "；".join(recurrence.phrases)
        owners = recurrence.owners or item.owners
        task = _task(ref, title_of(recurrence.phrases[0]), detail, owners, name)
        _recurring(task, recurrence, until)
        task["source"] = _source(name, item.lines[0])
        out.append(task)
    return out


def _note_lines(notes: list[Note], lang: str | None) -> list[str]:
    lines = []
    for note in notes:
        context = note.ctx()
        if "role" in context:
            context["role"] = _say(f"role_{context['role']}", lang)
        lines.append(_say(f"note_{note.key}", lang, **context))
    return lines


def item_tasks(
    item: Item,
    name: str,
    issued_on: date | None,
    lang: str | None,
    taken: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[CommentedMap], list[str]]:
    """The tasks one item becomes, and the comment lines to put above the first.

    ``taken``: the refs of all items, which recurring sub-tasks must not reuse.
    """
    notes = list(item.notes)
    source = _source(name, item.lines[0])
    if len(item.lines) > 1:
        others = "、".join(f"{name}:{line}" for line in item.lines[1:])
        notes.append(Note("also_at", (("sources", others),)))
    if item.due is not None and item.due_from == "text":
        notes.append(Note("due_from_text"))
    main = _task(item.ref, item.title, item.detail, item.owners, name)
    tasks: list[CommentedMap] = []
    if item.due is not None:
        main["due"] = item.due
        until: date | None = item.due
        if issued_on is not None and item.due < issued_on and item.recurrences:
            until = None
            notes.append(Note("until_dropped", (("due", item.due.isoformat()),)))
        tasks.append(_finish(main, item, source))
        tasks.extend(_subtasks(item, name, until, taken))
    elif item.ongoing:
        main["ongoing"] = True
        tasks.append(_finish(main, item, source))
        tasks.extend(_subtasks(item, name, None, taken))
    elif not item.recurrences:
        main["due"] = PENDING  # not chased until a reviewer sets the date
        notes.append(Note("no_deadline"))
        tasks.append(_finish(main, item, source))
    elif len(item.recurrences) == 1:
        _recurring(main, item.recurrences[0], None)
        tasks.append(_finish(main, item, source))
    else:
        subtasks = _subtasks(item, name, None, taken)
        first = subtasks[0]
        first["detail"] = _text(item.detail)
        if item.deadline_text:
            first.insert(len(first) - 1, "deadline_text", item.deadline_text)
        tasks.extend(subtasks)
        refs = "、".join(str(t["ref"]) for t in subtasks)
        notes.append(Note("subtasks_only", (("refs", refs),)))
        return tasks, _note_lines(notes, lang)
    if len(tasks) > 1:
        refs = "、".join(str(t["ref"]) for t in tasks[1:])
        notes.append(Note("subtasks", (("refs", refs),)))
    return tasks, _note_lines(notes, lang)


def _finish(task: CommentedMap, item: Item, source: str) -> CommentedMap:
    """The document's deadline wording, then where the task was read."""
    if item.deadline_text:
        task["deadline_text"] = item.deadline_text
    task["source"] = source
    return task


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def build_draft(
    extraction: Extraction, *, lang: str | None = None, year_text: str = ""
) -> CommentedMap:
    """The draft as a ruamel tree: dump it with :func:`dump`."""
    meta = extraction.meta
    name = extraction.name
    tree = CommentedMap()
    tree["schedule"] = meta.schedule_id
    tree.yaml_add_eol_comment(_say("schedule_id_hint", lang), "schedule")
    tree["title"] = meta.title
    if meta.issued_by:
        tree["issued_by"] = meta.issued_by
    if meta.issued_on:
        tree["issued_on"] = meta.issued_on
    tree["timezone"] = "Asia/Shanghai"
    tree["calendar"] = "cn"
    tree["working_hours"] = DoubleQuotedScalarString("08:30-18:00")

    tasks = CommentedSeq()
    comments: dict[int, list[str]] = {}
    subtasks = 0
    taken = {item.ref for item in extraction.items}
    for item in extraction.items:
        made, lines = item_tasks(item, name, meta.issued_on, lang, taken)
        if lines:
            comments[len(tasks)] = lines
        subtasks += sum(1 for t in made if str(t["ref"]).count(".") > item.ref.count("."))
        tasks.extend(made)

    people, units = _roster(tasks)
    people_map = CommentedMap()
    for person in people:
        people_map[person] = _flow_map()
        hint = "group_contact" if classify(person) is Kind.GROUP else "person_contact"
        people_map.yaml_add_eol_comment(_say(hint, lang), person)
    units_map = CommentedMap()
    for unit in units:
        units_map[unit] = _flow_map(contacts=_flow([]))
    tree["people"] = people_map
    tree["units"] = units_map
    tree["admins"] = _flow([])
    tree.yaml_add_eol_comment(_say("admins_hint", lang), "admins")
    tree["policy"] = _default_policy()
    tree["tasks"] = tasks

    if people:
        tree.yaml_set_comment_before_after_key(
            "people", before=_say("people_heading", lang, count=len(people))
        )
    if units:
        tree.yaml_set_comment_before_after_key(
            "units", before=_say("units_heading", lang, count=len(units))
        )
    tree.yaml_set_comment_before_after_key("policy", before=_say("policy_hint", lang))
    for index, lines in comments.items():
        tasks.yaml_set_comment_before_after_key(index, before="\n".join(lines), indent=2)

    unplaced = [
        {
            "source": f"{name}:{u.line}",
            "text": _excerpt(u.text),
            "reason": _say(f"unplaced_{u.reason}", lang),
        }
        for u in extraction.unplaced
    ]
    header = render(
        "extract_draft_header",
        lang,
        file=name,
        tasks=len(tasks),
        subtasks=subtasks,
        year=year_text or str(meta.year or ""),
        unplaced=unplaced,
    )
    tree.yaml_set_start_comment(header)
    return tree


def _roster(tasks: CommentedSeq) -> tuple[list[str], list[str]]:
    """Names to define: people for lead/responsible, units for units, partners by form."""
    people: list[str] = []
    units: list[str] = []
    for task in tasks:
        for role in ("lead", "responsible"):
            for person in task.get(role, []):
                if person not in people:
                    people.append(person)
        for unit in task.get("units", []):
            if unit not in units:
                units.append(unit)
    for task in tasks:
        for partner in task.get("partners", []):
            if partner in people or partner in units:
                continue
            kind = classify(partner)
            (people if kind in (Kind.PERSON, Kind.GROUP) else units).append(partner)
    return people, units


def dump(tree: CommentedMap) -> str:
    yaml = YAML()
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.ignore_aliases = lambda *_: True  # one date on two tasks: no &anchors
    stream = io.StringIO()
    yaml.dump(tree, stream)
    return stream.getvalue()
