"""Prose items: the numbered measures of a notice, 实施意见 or 工作方案.

Two readings, chosen by the caller:
- beside an annex table of items (``strict``), a numbered paragraph is an item only when it
  carries owner or deadline fields — labelled (（牵头领导：…；完成时限：…）, or lines of
  ``label：value`` after it) or an unlabelled assignment (（A、B负责）, :mod:`.assignment`);
  other numbered paragraphs are the notice's narrative about the table;
- with no such table, every numbered measure is an item, owners or not.  The numbering
  forms give the levels (一、 > （一） > 1. > (1) > ①); a numbered line with numbered
  children is a heading; frame parts (指导思想, 基本原则, 工作目标 …) are no measures;
  (1) / ① under an item are its parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.extract.assignment import is_timing, read_assignment, read_leading_assignment
from bot.extract.blocks import Para
from bot.extract.labels import OWNER_ROLES, Role, tail_label
from bot.extract.meta import DATE_LINE
from bot.extract.numbering import Level, Number, parse_number
from bot.extract.raw import Fields, Part, RawItem

_COLON = re.compile(r"[：:]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+$")
_OPENERS = "（(【["
_CLOSERS = "）)】]"


def parse_tail(text: str) -> tuple[str, Fields]:
    """Split a paragraph into its body and its labelled fields (role → values)."""
    labels: list[tuple[int, int, Role]] = []  # label start, value start, role
    stops: list[int] = []  # other "label：" after a separator (报送对象：…): a value ends there
    for colon in _COLON.finditer(text):
        run = _CJK_RUN.search(text[: colon.start()].rstrip())
        if not run:
            continue
        found = tail_label(run.group(0))
        if found:
            offset, role = found
            labels.append((run.start() + offset, colon.end(), role))
        elif _is_other_label(text, run):
            stops.append(run.start())
    if not labels:
        return text.strip(), {}
    fields: Fields = {}
    for index, (_, value_start, role) in enumerate(labels):
        value_end = labels[index + 1][0] if index + 1 < len(labels) else len(text)
        value_end = min([value_end, *(s for s in stops if value_start < s < value_end)])
        value = _close_at_paren(text[value_start:value_end])
        value = value.strip().strip("；;，,。．.、 ").strip()
        value = _drop_unopened_closers(value).strip().strip("；;，,。 ")
        when = ""
        if role is not Role.DEADLINE:
            value, when = _split_timing(value)
        if value:
            fields.setdefault(role, []).append(value)
        if when:
            fields.setdefault(Role.DEADLINE, []).append(when)
    body = text[: labels[0][0]].rstrip()
    if body and body[-1] in _OPENERS:
        body = body[:-1].rstrip()
    return body, fields


_LAST_CLAUSE = re.compile(r"[；;，,](?P<when>[^；;，,]+)$")


def _split_timing(value: str) -> tuple[str, str]:
    """ "区金融办；2023年第三季度": an unlabelled time clause after the last owner."""
    match = _LAST_CLAUSE.search(value)
    if match is None or not is_timing(match["when"]):
        return value, ""
    return value[: match.start()].strip(), match["when"].strip()


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


_SEPARATORS = "；;，,。　 \t"


def _is_other_label(text: str, run: re.Match[str]) -> bool:
    """A short ``word：`` right after a separator is a field we do not read, not a value's."""
    return 2 <= len(run.group(0)) <= 6 and run.start() > 0 and text[run.start() - 1] in _SEPARATORS


def _drop_unopened_closers(value: str) -> str:
    """The tail's own closing brackets go, a name's stay: "各村（社区））" → "各村（社区）"."""
    while value and value[-1] in _CLOSERS and _unopened(value):
        value = value[:-1].rstrip()
    return value


def _unopened(value: str) -> bool:
    return sum(value.count(c) for c in _CLOSERS) > sum(value.count(c) for c in _OPENERS)


def read_fields(text: str) -> tuple[str, Fields]:
    """Body and fields of one paragraph: labelled tails first, else an unlabelled assignment."""
    body, fields = parse_tail(text)
    if not any(role is not Role.DEADLINE for role in fields):
        body, assigned = read_assignment(body)
        for role, values in assigned.items():
            fields.setdefault(role, []).extend(values)
    if not any(role is not Role.DEADLINE for role in fields):
        body, assigned = read_leading_assignment(body)
        fields.update(assigned)
    return body, fields


@dataclass
class _Line:
    para: Para
    number: Number | None
    body: str
    fields: Fields

    @property
    def level(self) -> Level:
        assert self.number is not None
        return self.number.level


# "11.121人才工程…": item 11, whose text begins with digits; read so only where 11 is the
# number the items have reached (a bare "3.31" elsewhere is a date, not item 3)
_RUN_ON = re.compile(r"^\s*(\d{1,3})\.(?=\d)")


def _lines(paras: list[Para]) -> list[_Line]:
    out = []
    last_item = 0
    for para in paras:
        number = parse_number(para.text)
        run_on = _RUN_ON.match(para.text) if number is None else None
        if run_on and int(run_on.group(1)) == last_item + 1:
            number = Number(Level.ITEM, last_item + 1, para.text[run_on.end() :].strip())
        if number is not None and number.level is Level.ITEM:
            last_item = number.value
        body, fields = read_fields(number.rest if number else para.text)
        out.append(_Line(para, number, body, fields))
    return out


def prose_items(paras: list[Para], *, strict: bool = True) -> tuple[list[RawItem], list[Para]]:
    """Items among the paragraphs, and the paragraphs that look like duties but are not."""
    lines = _lines(paras)
    return _with_fields(lines) if strict else _measures(lines)


def _with_fields(lines: list[_Line]) -> tuple[list[RawItem], list[Para]]:
    """Beside a table: only numbered paragraphs with fields are items."""
    items: list[RawItem] = []
    others: list[Para] = []
    pending: _Line | None = None  # a numbered paragraph still waiting for label lines
    heading: _Line | None = None  # "3.强化企业主体责任。" over measures (1) (2) with fields
    section: int | None = None
    for line in lines:
        number, body, fields, para = line.number, line.body, line.fields, line.para
        if number and number.level < Level.SUB:
            heading = None
        if number and number.level is Level.SECTION and not fields:
            section = number.value
            pending = None
            continue
        if number and fields and number.level >= Level.SUB and _is_heading(pending):
            assert pending is not None
            heading, pending = pending, None
            others.append(heading.para)
        if number and fields and number.level >= Level.SUB and heading is not None:
            item = RawItem(number.value, number.level, para.line, body, "prose", section, fields)
            item.parent = _value(heading)
            items.append(item)
        elif number and fields and items and number.level >= Level.SUB > items[-1].level:
            # "(1)…（责任单位：…）" under "2.…": a measure of item 2 with its own owners
            items[-1].parts.append(Part(body, para.line, fields))
            items[-1].add_fields({r: v for r, v in fields.items() if r is not Role.DEADLINE})
        elif number and fields:
            if pending is not None:
                others.append(pending.para)
            items.append(
                RawItem(number.value, number.level, para.line, body, "prose", section, fields)
            )
            pending = None
        elif fields and not body and (items or pending):
            if pending is not None:
                head = pending.number
                assert head is not None
                items.append(
                    RawItem(
                        head.value, head.level, pending.para.line, head.rest, "prose", section, {}
                    )
                )
                pending = None
            items[-1].add_fields(fields)
        elif number:
            if pending is not None:
                others.append(pending.para)
            pending = line
        else:
            if pending is not None and para.line - pending.para.line > 3:
                others.append(pending.para)
                pending = None
    if pending is not None:
        others.append(pending.para)
    return items, others


# Parts of a plan that frame the measures without being any: their numbered children are
# not tasks ("（一）指导思想。以习近平…", "二、基本原则").
_FRAME = re.compile(
    r"^(?:总体要求|指导思想|基本原则|工作原则|总体原则|总体目标|工作目标|主要目标|发展目标|"
    r"目标要求|总体思路|工作思路|适用范围|编制依据|主要依据|工作依据)(?:$|[。：:，,\s])"
)
_ANNEX = re.compile(r"^附\s*件")
_SENTENCE = re.compile(r"[。；;！？]")
_TASK_LEVELS = (Level.SECTION, Level.ITEM_CN, Level.ITEM)


def _title_like(text: str) -> bool:
    """A heading's own words: short, no sentence inside ("（一）危险化学品领域。")."""
    text = text.strip().rstrip("。.：:")
    return len(text) <= 30 and not _SENTENCE.search(text)


def _is_heading(line: _Line | None) -> bool:
    """A numbered title alone, no fields ("3.强化企业主体责任。"): measures follow it."""
    return (
        line is not None and line.level < Level.SUB and _title_like(line.body) and not line.fields
    )


def _under_heading(item: RawItem, heading: _Line) -> None:
    """A measure under "（一）加强危化品监管。（牵头单位：区应急局）": the heading's part number
    (for refs when the measures number again in each part), and its owners when the measure
    names none: the document itself says they cover its measures (no guess to flag)."""
    item.part = _value(heading)
    owners = {r: v for r, v in heading.fields.items() if r in OWNER_ROLES}
    if owners and not item.has_owner_fields():
        item.add_fields(owners)


def _value(line: _Line) -> int:
    assert line.number is not None
    return line.number.value


def _measures(lines: list[_Line]) -> tuple[list[RawItem], list[Para]]:
    """No table of items: every numbered measure is an item (see the module's rules)."""
    parent: dict[int, int | None] = {}
    stack: list[int] = []
    for i, line in enumerate(lines):
        if line.number is None:
            continue
        while stack and lines[stack[-1]].level >= line.level:
            stack.pop()
        parent[i] = stack[-1] if stack else None
        stack.append(i)
    # a heading has measures below it; a measure with only (1) (2) below it keeps them as parts
    heads = {p for i, p in parent.items() if p is not None and lines[i].level in _TASK_LEVELS}
    # where a level is used for headings, a title alone at that level ("三、工作步骤", its
    # stages unnumbered below it) is a heading too
    heading_levels = {lines[h].level for h in heads}
    heads |= {
        i
        for i in parent
        if lines[i].level in heading_levels and _title_like(lines[i].body) and not lines[i].fields
    }
    # a title alone ("3.强化企业主体责任。") over (1) (2) …: a heading whose measures are the
    # tasks, ref "3.1"; under a measure with text of its own they stay its parts
    sub_heads = {
        p
        for i, p in parent.items()
        if p is not None
        and lines[i].level >= Level.SUB
        and lines[p].level in _TASK_LEVELS
        and _title_like(lines[p].body)
        and not lines[p].fields
    }
    heads |= sub_heads
    frame: set[int] = set()
    for i, up in parent.items():
        if _FRAME.match(lines[i].body) or (up is not None and up in frame):
            frame.add(i)
    items: list[RawItem] = []
    others: list[Para] = []
    owner: dict[int, RawItem] = {}  # numbered line → the item it is, or is a part of
    section: int | None = None
    current: RawItem | None = None  # the item unnumbered lines may still belong to
    annex = False  # after "附件：", numbered titles are a list of annexes
    for index, line in enumerate(lines):
        para, number = line.para, line.number
        if number is None:
            if _ANNEX.match(para.text) and len(para.text) <= 60:
                annex = True
            if current is not None and line.fields and not line.body:
                current.add_fields(line.fields)  # "牵头单位：…" on the lines after an item
                continue
            if (
                current is not None
                and _title_like(current.text)
                and not current.parts
                and not DATE_LINE.match(para.text)  # the signature's date, after the last item
            ):
                current.text = f"{current.text}\n{line.body}".strip()  # a title, then its text
                current.add_fields(line.fields)
                continue
            others.append(para)
            current = None
            continue
        if number.level is Level.SECTION:
            section = number.value
        if index in frame or (annex and _title_like(line.body) and not line.fields):
            others.append(para)
            current = None
            continue
        if index in heads:
            others.append(para)  # listed for review when it states a date or a period
            current = None
            continue
        up = parent[index]
        above = owner.get(up) if up is not None else None
        if number.level >= Level.SUB and above is not None:
            above.parts.append(Part(line.body, para.line, line.fields))
            above.add_fields({r: v for r, v in line.fields.items() if r is not Role.DEADLINE})
            owner[index] = above
            continue
        item = RawItem(
            number.value, number.level, para.line, line.body, "prose", section, line.fields
        )
        if up in sub_heads and up is not None:
            item.parent = _value(lines[up])
        elif up in heads and up is not None:
            _under_heading(item, lines[up])
        items.append(item)
        owner[index] = item
        current = item
    return items, others
