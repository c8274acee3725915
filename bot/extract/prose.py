"""Prose items: numbered paragraphs ending in （牵头领导：…；责任单位：…；完成时限：…）.

A paragraph is an item when it carries such labelled fields, in parentheses or not, or
when lines of ``label：value`` follow it.  Numbered paragraphs without them are the
plan's narrative, not tasks.
"""

from __future__ import annotations

import re

from bot.extract.blocks import Para
from bot.extract.labels import Role, tail_label
from bot.extract.numbering import Level, parse_number
from bot.extract.raw import Fields, Part, RawItem

_COLON = re.compile(r"[：:]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+$")
_OPENERS = "（(【["
_CLOSERS = "）)】]"


def parse_tail(text: str) -> tuple[str, Fields]:
    """Split a paragraph into its body and its labelled fields (role → values)."""
    labels: list[tuple[int, int, Role]] = []  # label start, value start, role
    for colon in _COLON.finditer(text):
        run = _CJK_RUN.search(text[: colon.start()].rstrip())
        if not run:
            continue
        found = tail_label(run.group(0))
        if found:
            offset, role = found
            labels.append((run.start() + offset, colon.end(), role))
    if not labels:
        return text.strip(), {}
    fields: Fields = {}
    for index, (_, value_start, role) in enumerate(labels):
        value_end = labels[index + 1][0] if index + 1 < len(labels) else len(text)
        value = _close_at_paren(text[value_start:value_end])
        value = value.strip().strip("；;，,。．.、 ").strip()
        value = value.rstrip("".join(_CLOSERS)).strip().strip("；;，,。 ")
        if value:
            fields.setdefault(role, []).append(value)
    body = text[: labels[0][0]].rstrip()
    if body and body[-1] in _OPENERS:
        body = body[:-1].rstrip()
    return body, fields


def _close_at_paren(value: str) -> str:
    """A value ends where the tail's bracket closes: "2022年5月底）其后文字" → "2022年5月底"."""
    depth = 0
    for index, char in enumerate(value):
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            if depth == 0:
                return value[:index]
            depth -= 1
    return value


def prose_items(paras: list[Para]) -> tuple[list[RawItem], list[Para]]:
    """Items among the paragraphs, and the numbered paragraphs that were not items."""
    items: list[RawItem] = []
    others: list[Para] = []
    pending: Para | None = None  # a numbered paragraph still waiting for label lines
    section: int | None = None
    for para in paras:
        number = parse_number(para.text)
        body, fields = parse_tail(number.rest if number else para.text)
        if number and number.level is Level.SECTION and not fields:
            section = number.value
            pending = None
            continue
        if number and fields and items and number.level >= Level.SUB > items[-1].level:
            # "(1)…（责任单位：…）" under "2.…": a measure of item 2 with its own owners
            items[-1].parts.append(Part(body, para.line, fields))
            items[-1].add_fields({r: v for r, v in fields.items() if r is not Role.DEADLINE})
        elif number and fields:
            if pending is not None:
                others.append(pending)
            items.append(
                RawItem(number.value, number.level, para.line, body, "prose", section, fields)
            )
            pending = None
        elif fields and not body and (items or pending):
            if pending is not None:
                head = parse_number(pending.text)
                assert head is not None
                items.append(
                    RawItem(head.value, head.level, pending.line, head.rest, "prose", section, {})
                )
                pending = None
            items[-1].add_fields(fields)
        elif number:
            if pending is not None:
                others.append(pending)
            pending = para
        else:
            if pending is not None and para.line - pending.line > 3:
                others.append(pending)
                pending = None
    if pending is not None:
        others.append(pending)
    return items, others
