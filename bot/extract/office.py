"""Word (.docx) and Excel (.xlsx) documents → blocks.

Neither has text lines, so ``line`` counts blocks: in a .docx each paragraph and each
table row is one line, in body order; in an .xlsx a line is the sheet's row number
(sheets after the first are offset by 100000 per sheet, so sources stay unique).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.extract.blocks import Block, Cell, Para, Row, Table
from bot.extract.limits import MAX_CELLS, DocumentRefused, Tally

_CN_FORMATS = ("chinese", "ideograph", "japaneseCounting", "taiwanese")
_CN_CHARS = "〇一二三四五六七八九"


def _cn_number(value: int) -> str:
    if value < 10:
        return _CN_CHARS[value]
    tens, ones = divmod(value, 10)
    head = "" if tens == 1 else _CN_CHARS[tens]
    return f"{head}十{_CN_CHARS[ones] if ones else ''}"


class _Numbering:
    """Word's automatic list numbers, which are not in the paragraph text, written back in."""

    def __init__(self, document: Any) -> None:
        self.counters: dict[tuple[str, int], int] = {}
        self.formats: dict[tuple[str, int], tuple[str, str]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        ns = root.nsmap
        w = "{" + ns["w"] + "}"
        abstract = {a.get(w + "abstractNumId"): a for a in root.findall("w:abstractNum", ns)}
        for num in root.findall("w:num", ns):
            ref = num.find("w:abstractNumId", ns)
            node = abstract.get(ref.get(w + "val")) if ref is not None else None
            if node is None:
                continue
            for lvl in node.findall("w:lvl", ns):
                fmt = lvl.find("w:numFmt", ns)
                text = lvl.find("w:lvlText", ns)
                self.formats[(num.get(w + "numId"), int(lvl.get(w + "ilvl")))] = (
                    fmt.get(w + "val") if fmt is not None else "decimal",
                    text.get(w + "val") if text is not None else "%1.",
                )

    @staticmethod
    def _num_pr(paragraph: Any) -> Any:
        """The paragraph's own list numbering, or its style's ("List Number")."""
        ppr = paragraph._p.pPr
        if ppr is not None and ppr.numPr is not None and ppr.numPr.numId is not None:
            return ppr.numPr
        style = paragraph.style
        while style is not None:
            spr = style.element.pPr
            if spr is not None and spr.numPr is not None and spr.numPr.numId is not None:
                return spr.numPr
            style = style.base_style
        return None

    def prefix(self, paragraph: Any) -> str:
        num_pr = self._num_pr(paragraph)
        if num_pr is None:
            return ""
        num_id = str(num_pr.numId.val)
        level = int(num_pr.ilvl.val) if num_pr.ilvl is not None else 0
        key = (num_id, level)
        self.counters[key] = self.counters.get(key, 0) + 1
        for other in list(self.counters):
            if other[0] == num_id and other[1] > level:
                del self.counters[other]
        fmt, pattern = self.formats.get(key, ("decimal", "%1."))
        value = self.counters[key]
        if fmt == "bullet":
            return ""
        shown = _cn_number(value) if fmt.startswith(_CN_FORMATS) else str(value)
        return pattern.replace(f"%{level + 1}", shown)


def _year(when: Any) -> int | None:
    return when.year if isinstance(when, datetime) else None


def docx_blocks(path: Path) -> tuple[list[Block], int | None]:
    """Paragraphs and tables in body order (merged cells repeat, marked as copies), and the
    year the file was created."""
    import docx  # python-docx
    from docx.table import Table as DocxTable

    document = docx.Document(str(path))
    numbering = _Numbering(document)
    tally = Tally()
    blocks: list[Block] = []
    line = 0
    for item in document.iter_inner_content():
        if isinstance(item, DocxTable):
            table = Table()
            for cells in _table_rows(item._tbl, tally):
                line += 1
                tally.block()
                table.rows.append(Row(tuple(Cell(t, line, merged=m) for t, m in cells)))
            if table.rows:
                blocks.append(table)
        else:
            line += 1
            text = item.text.strip()
            tally.block(text)
            prefix = numbering.prefix(item)
            if prefix and text and not _starts_numbered(text):
                text = prefix + text
            if text:
                blocks.append(Para(text, line))
    return blocks, _year(document.core_properties.created)


def _table_rows(tbl: Any, tally: Tally) -> list[list[tuple[str, bool]]]:
    """Rows of (text, is a merged copy), read from the table's XML in one pass.

    python-docx's ``row.cells`` lays out the whole table for every row, which makes a
    20,000-row table take hours; here each cell is visited once.  A horizontally merged
    cell (gridSpan) repeats across its columns; a vertically merged one (vMerge continue)
    repeats the text above it.
    """
    from docx.oxml.ns import qn

    rows: list[list[tuple[str, bool]]] = []
    above: dict[int, str] = {}
    for tr in tbl.iterchildren(qn("w:tr")):
        cells: list[tuple[str, bool]] = []
        column = 0
        for tc in tr.iterchildren(qn("w:tc")):
            span = max(1, min(_int(tc.grid_span), 64))
            continued = tc.vMerge == "continue"
            if continued:
                text = above.get(column, "")
            else:
                text = "\n".join(
                    "".join(t.text or "" for t in p.iter(qn("w:t"))) for p in tc.iter(qn("w:p"))
                ).strip()
            tally.cell(text, span)
            for offset in range(span):
                cells.append((text, continued or offset > 0))
                above[column + offset] = text
            column += span
        rows.append(cells)
    return rows


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def _starts_numbered(text: str) -> bool:
    from bot.extract.numbering import parse_number

    return parse_number(text) is not None


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def xlsx_blocks(path: Path) -> tuple[list[Block], int | None]:
    """Each sheet as one table (lone title rows above it as paragraphs), and the year the
    workbook was created.  :func:`~bot.extract.limits.check_package` has bounded the cells
    and merged ranges before this runs."""
    import openpyxl

    workbook = openpyxl.load_workbook(str(path), data_only=True)
    tally = Tally()
    blocks: list[Block] = []
    for sheet_index, sheet in enumerate(workbook.worksheets):
        offset = sheet_index * 100000
        copies: dict[tuple[int, int], tuple[int, int]] = {}
        for merged in sheet.merged_cells.ranges:
            tally.cell(copies=merged.size["rows"] * merged.size["columns"])
            for row in range(merged.min_row, merged.max_row + 1):
                for col in range(merged.min_col, merged.max_col + 1):
                    if (row, col) != (merged.min_row, merged.min_col):
                        copies[(row, col)] = (merged.min_row, merged.min_col)
        if sheet.max_row * sheet.max_column > MAX_CELLS:
            raise DocumentRefused(
                "sheet_extent",
                rows=sheet.max_row,
                columns=sheet.max_column,
                limit=MAX_CELLS,
                sheet=sheet.title,
            )
        table = Table()
        for row in sheet.iter_rows(min_row=1, max_row=sheet.max_row, max_col=sheet.max_column):
            cells: list[Cell] = []
            for cell in row:
                origin = copies.get((cell.row, cell.column))
                if origin:
                    value = sheet.cell(row=origin[0], column=origin[1]).value
                    cells.append(Cell(_cell_text(value), offset + cell.row, merged=True))
                else:
                    cells.append(Cell(_cell_text(cell.value), offset + cell.row))
                tally.text(cells[-1].text)
            own = [c for c in cells if c.text and not c.merged]
            if not own:
                continue
            tally.block()
            if not table.rows and len(own) == 1:
                blocks.append(Para(own[0].text, own[0].line))
                continue
            table.rows.append(Row(tuple(cells)))
        if table.rows:
            blocks.append(table)
    return blocks, _year(workbook.properties.created)
