"""Table rows → numbered items.

Columns are found by their header names (:mod:`.labels`), never by position; which text
column holds the items is then settled by content (the column whose cells start
"1." "2." …).  A new number in that column starts an item; rows without one add
measures and owners to the item above.  Word exports lose merged cells, so a row whose
text sits left of where its numbering belongs ("(2)…" in the first column) is moved back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.extract.assignment import read_owner_cell
from bot.extract.blocks import Cell, Row, Table
from bot.extract.labels import OWNER_ROLES, TEXT_ROLES, Role, role_of
from bot.extract.numbering import Level, cn_to_int, parse_number, split_measures
from bot.extract.prose import parse_tail
from bot.extract.raw import Fields, Part, RawItem, Unplaced

_FIELD_ROLES = (*OWNER_ROLES, Role.DEADLINE)


@dataclass
class Layout:
    roles: list[Role | None]

    def index(self, role: Role) -> int | None:
        return self.roles.index(role) if role in self.roles else None

    def indices(self, role: Role) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r is role]


def _header_roles(row: Row) -> list[Role | None] | None:
    """The roles a header row names, or None when the row is not a header."""
    texts = [c.text.strip() for c in row.cells]
    filled = [t for t in texts if t]
    if len(filled) < 2 or any(len(t) > 16 or not _name_like(t) for t in filled):
        return None
    roles = [role_of(t) if t else None for t in texts]
    named = [r for r in roles if r is not None]
    if len(named) < 2 or 3 * len(named) < 2 * len(filled):
        return None
    if not any(r in _FIELD_ROLES for r in named):
        return None
    if not any(r in (*TEXT_ROLES, Role.NUMBER) for r in named):
        return None
    return roles


def _refine(roles: list[Role | None], row: Row) -> bool:
    """Apply a sub-header row (责任主体 → 牵头单位 | 配合单位) to ``roles``; False if not one."""
    texts = [c.text.strip() for c in row.cells]
    filled = [(i, t) for i, t in enumerate(texts) if t and not row.cells[i].merged]
    if not filled or any(len(t) > 16 or role_of(t) is None for _, t in filled):
        return False
    if len(filled) == 1 and parse_number(filled[0][1]) is not None:
        return False
    for i, text in filled:
        if i < len(roles):
            roles[i] = role_of(text)
    return True


_NOT_A_NAME = re.compile(r"[。，；;,、]|\d+\s*月|^\d+$")


def _name_like(text: str) -> bool:
    """A column name: short, no numbering, no sentence punctuation, no date."""
    return parse_number(text) is None and not _NOT_A_NAME.search(text)


def _settle_text_columns(roles: list[Role | None], rows: list[Row]) -> Layout:
    """Decide category / task / measure among the text columns by what their cells hold."""
    text_cols = [i for i, r in enumerate(roles) if r in TEXT_ROLES or r is None]
    counts: dict[int, dict[Level, int]] = {i: {} for i in text_cols}
    for row in rows:
        for i in text_cols:
            if i < len(row.cells) and not row.cells[i].merged:
                number = parse_number(row.cells[i].text)
                if number:
                    counts[i][number.level] = counts[i].get(number.level, 0) + 1
    settled: list[Role | None] = list(roles)

    def items_in(i: int) -> int:
        return counts[i].get(Level.ITEM, 0) + counts[i].get(Level.ITEM_CN, 0)

    task = max(text_cols, key=items_in, default=None)
    if task is None or items_in(task) == 0:
        named = [i for i in text_cols if roles[i] is Role.TASK]
        others = [i for i in text_cols if roles[i] not in (Role.CATEGORY,)]
        task = named[0] if named else (others[0] if others else None)
    for i in text_cols:
        if i == task:
            settled[i] = Role.TASK
        elif (
            task is not None
            and i < task
            and (
                roles[i] is Role.CATEGORY
                or counts[i].get(Level.SECTION, 0) > 0
                # "重点任务 | 具体措施" with the measures numbered: the tasks are the measures
                or (roles[i] is Role.TASK and items_in(i) == 0)
            )
        ):
            settled[i] = Role.CATEGORY
        elif task is not None and i > task and roles[i] in (Role.MEASURE, Role.TASK, None):
            settled[i] = Role.MEASURE
        elif roles[i] is None:
            settled[i] = None
    if Role.NUMBER not in settled and task is not None and task > 0:
        # a first column of bare numbers (1, 2, 3) is a 序号 column without the name
        first = [r.cells[0].text.strip() for r in rows if r.cells and r.cells[0].text.strip()]
        if first and all(t.isdigit() for t in first) and roles[0] is None:
            settled[0] = Role.NUMBER
    return Layout(settled)


def _expected_column(layout: Layout, level: Level) -> int | None:
    if level is Level.SECTION:
        return layout.index(Role.CATEGORY)
    if level in (Level.ITEM, Level.ITEM_CN):
        return layout.index(Role.TASK)
    measures = layout.indices(Role.MEASURE)
    return measures[0] if measures else None


def realign(row: Row, layout: Layout) -> Row:
    """Move a row right when merged cells were dropped before its first cell."""
    cells = list(row.cells)
    first = next((i for i, c in enumerate(cells) if c.text.strip() and not c.merged), None)
    if first is None:
        return row
    number = parse_number(cells[first].text)
    if number is None:
        return row
    target = _expected_column(layout, number.level)
    if target is None or target <= first:
        return row
    shift = target - first
    if len(cells) < shift or any(c.text.strip() for c in cells[len(cells) - shift :]):
        return row
    line = cells[first].line
    moved = [Cell("", line) for _ in range(shift)] + cells[: len(cells) - shift]
    return Row(tuple(moved))


def _row_fields(row: Row, layout: Layout) -> Fields:
    fields: Fields = {}
    for i, role in enumerate(layout.roles):
        if role in _FIELD_ROLES and i < len(row.cells):
            text = row.cells[i].text.strip()
            if not text:
                continue
            # one 责任单位 cell holding "牵头单位：A\n配合单位：B": the labels give the roles
            labelled = parse_tail(text)[1] if role in OWNER_ROLES else {}
            if labelled and not parse_tail(text)[0]:
                for inner, values in labelled.items():
                    fields.setdefault(inner, []).extend(values)
                continue
            assigned = read_owner_cell(text) if role in (Role.UNITS, Role.OWNERS) else {}
            for inner, values in assigned.items():  # "A牵头，B配合" in one cell
                fields.setdefault(inner, []).extend(values)
            if not assigned:
                fields.setdefault(role, []).append(text)
    return fields


def _item_number(text: str) -> int | None:
    number = parse_number(text)
    return number.value if number and number.level in (Level.ITEM, Level.ITEM_CN) else None


def _cell(row: Row, index: int | None) -> Cell | None:
    if index is None or index >= len(row.cells):
        return None
    return row.cells[index]


class TableReader:
    """Reads tables in order; an item may go on from one table into the next."""

    def __init__(self) -> None:
        self.items: list[RawItem] = []
        self.unplaced: list[Unplaced] = []
        self.layout: Layout | None = None
        self.section: int | None = None
        self.numbered = False  # the item column uses numbers: unnumbered text continues
        self._merges_known = False
        self.grouped = False  # 序号 merged over measures numbered 1. 2. again: refs "序号.n"
        self.group: int | None = None  # the 序号 the rows are under
        self.number_groups = False
        self.heading_numbers: set[str] = set()  # 序号 of section rows (一 / 1 above 1.1)

    def read(self, table: Table) -> None:
        rows = table.rows
        start = 0
        header: Row | None = None
        for index, row in enumerate(rows[:6]):
            roles = _header_roles(row)
            if roles is not None:
                header = row
                start = index + 1
                if start < len(rows) and _refine(roles, rows[start]):
                    start += 1  # a second header row naming the parts of a merged header
                self.layout = _settle_text_columns(roles, rows[start:])
                break
        else:
            if self.layout is None or len(self.layout.roles) != len(rows[0].cells):
                for row in rows:
                    if any(c.text.strip() for c in row.cells):
                        text = " | ".join(c.text for c in row.cells if c.text.strip())
                        self.unplaced.append(Unplaced(row.line, text, "no_header"))
                return
        self._merges_known = any(c.merged for r in rows for c in r.cells)
        layout = self.layout
        assert layout is not None
        task_col = layout.index(Role.TASK)
        self.numbered = self.numbered or any(
            _item_number(r.cells[task_col].text) is not None
            for r in rows[start:]
            if task_col is not None and task_col < len(r.cells)
        )
        self.grouped = _grouped(rows[start:], layout)
        number_col = layout.index(Role.NUMBER)
        # a 序号 merged over several rows numbers groups; the task cells' own numbers win
        self.number_groups = number_col is not None and any(
            c.merged for r in rows[start:] if (c := _cell(r, number_col)) is not None
        )
        self.heading_numbers = _heading_numbers(rows[start:], number_col)
        first_new = len(self.items)
        for row in rows[start:]:
            if header is not None and row.texts() == header.texts():
                continue  # the header repeated after a page break
            self._row(realign(row, layout), layout)
        if not self._merges_known:
            self._inherit_owners(first_new)

    def _row(self, row: Row, layout: Layout) -> None:
        own = [c for c in row.cells if c.text.strip() and not c.merged]
        if len(own) == 1 and layout.index(Role.CATEGORY) is None:
            number = parse_number(own[0].text)
            if number is not None and number.level is Level.SECTION:
                self.section = number.value  # a section heading across the whole row
                return
        category = _cell(row, layout.index(Role.CATEGORY))
        if category is not None and category.text.strip() and not category.merged:
            number = parse_number(category.text)
            if number is not None and number.level is Level.SECTION:
                self.section = number.value
        task = _cell(row, layout.index(Role.TASK))
        number_cell = _cell(row, layout.index(Role.NUMBER))
        task_text = task.text.strip() if task is not None and not task.merged else ""
        fields = _row_fields(row, layout)
        own_number = number_cell is not None and not number_cell.merged
        written = number_cell.text.strip() if number_cell is not None and own_number else ""
        if written in self.heading_numbers and not fields:
            self.section = cn_to_int(written.rstrip(".、．"))  # "一 | 压实责任 |  |"
            return
        decimal = _DECIMAL.match(written)
        measures = [
            c
            for i in layout.indices(Role.MEASURE)
            if (c := _cell(row, i)) is not None and c.text.strip() and not c.merged
        ]
        number = parse_number(task_text) if task_text else None
        if number is not None and number.level not in (Level.ITEM, Level.ITEM_CN):
            number = None
        value = number.value if number else None
        parent: int | None = None
        if number_cell is not None and number_cell.text.strip() and not number_cell.merged:
            self.group = cn_to_int(number_cell.text.strip().rstrip(".、．"))
            if not self.grouped and not (self.number_groups and number is not None):
                value = self.group or value
        if self.grouped and value is not None:
            parent = self.group
        if decimal is not None:
            parent, value = int(decimal["head"]), int(decimal["sub"])  # 序号 "1.2": ref 1.2
        if value is not None or (task_text and not self.numbered):
            if value is None:
                value = len(self.items) + 1
            text = number.rest if number else task_text
            item = RawItem(
                value,
                number.level if number else Level.ITEM,
                (task or row.cells[0]).line if task_text else row.line,
                text,
                "table",
                self.section,
            )
            item.parent = parent
            self.items.append(item)
        elif not self.items:
            if any(c.text.strip() for c in row.cells):
                text = " | ".join(c.text for c in row.cells if c.text.strip())
                self.unplaced.append(Unplaced(row.line, text, "before_items"))
            return
        item = self.items[-1]
        if task_text and value is None:
            item.text = f"{item.text}\n{task_text}"
        item.add_fields(fields)
        for cell in measures:
            for text in split_measures(cell.text):
                item.parts.append(Part(text, cell.line, fields))

    def _inherit_owners(self, first_new: int) -> None:
        """An item with every owner cell empty sat under a merged cell: take the owners above."""
        for index in range(max(first_new, 1), len(self.items)):
            item, above = self.items[index], self.items[index - 1]
            if item.has_owner_fields() or item.section != above.section:
                continue
            source = above
            if not source.has_owner_fields():
                continue
            for role in OWNER_ROLES:
                if source.fields.get(role):
                    item.fields[role] = list(source.fields[role][:1])
            item.inherited_from = source.inherited_from or source.number


_DECIMAL = re.compile(r"^(?P<head>\d{1,3})\s*[.．]\s*(?P<sub>\d{1,3})$")
_CN_NUMBER = re.compile(r"^[一二三四五六七八九十]{1,3}[、.．]?$")


def _heading_numbers(rows: list[Row], number_col: int | None) -> set[str]:
    """序号 that open a section rather than number an item: Chinese numerals (一, 二、) among
    Arabic ones, and N above rows numbered N.1, N.2."""
    if number_col is None:
        return set()
    written = [
        c.text.strip()
        for r in rows
        if (c := _cell(r, number_col)) is not None and c.text.strip() and not c.merged
    ]
    out: set[str] = set()
    if any(w.isdigit() or _DECIMAL.match(w) for w in written):
        out |= {w for w in written if _CN_NUMBER.match(w)}
    heads = {m["head"] for w in written if (m := _DECIMAL.match(w))}
    out |= {w for w in written if w.rstrip(".、．") in heads and w.rstrip(".、．").isdigit()}
    return out


def _grouped(rows: list[Row], layout: Layout) -> bool:
    """The 序号 cell is merged over several rows whose task cells number again from 1."""
    number_col, task_col = layout.index(Role.NUMBER), layout.index(Role.TASK)
    if number_col is None or task_col is None:
        return False
    group: int | None = None
    owns = [
        n
        for row in rows
        if (task := _cell(row, task_col)) is not None
        and not task.merged
        and (n := _item_number(task.text)) is not None
    ]
    if len(set(owns)) == len(owns):
        return False  # the measures' numbers run on: they are the items' own numbers
    for row in rows:
        number_cell, task = _cell(row, number_col), _cell(row, task_col)
        if number_cell is None or task is None:
            continue
        if number_cell.text.strip() and not number_cell.merged:
            group = cn_to_int(number_cell.text.strip().rstrip(".、．"))
        elif not number_cell.merged:
            continue
        own = _item_number(task.text) if not task.merged else None
        if group is not None and own is not None and number_cell.merged and own > 1:
            return True  # "2.…" in a row still under the 序号 above
    return False


def table_items(tables: list[Table]) -> tuple[list[RawItem], list[Unplaced]]:
    reader = TableReader()
    for table in tables:
        reader.read(table)
    return reader.items, reader.unplaced
