"""A document file → :class:`~bot.extract.blocks.Document` (paragraphs and table rows).

Plain text holds several layouts at once, each read here with its source line:
- Markdown pipe tables (004);
- "one cell per line" tables from a Word export (000, 002): each cell starts with a tab,
  lines without a tab continue the cell before; the header row's names fix the width;
- tab-separated rows (one row per line, cells between tabs);
- HTML (a text file with ``<table>`` in it is read as HTML);
- everything else is a paragraph per line.
.docx, .xlsx and .html files go to their own readers.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bot.extract.blocks import Block, Cell, Document, Para, Row, Table
from bot.extract.labels import role_of
from bot.extract.limits import MAX_BLOCKS, DocumentRefused, Tally, check_file, check_package
from bot.extract.markup import fragment_text, html_blocks, markdown_tables, strip_emphasis
from bot.extract.numbering import Level, parse_number
from bot.extract.office import docx_blocks, xlsx_blocks

_MD_DELIMITER = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_HTML_TABLE = re.compile(r"<table\b", re.IGNORECASE)


class UnreadableDocument(Exception):
    """The file is missing, empty, or in a format we do not read."""


def read_document(path: Path) -> Document:
    """Read any supported file; the format is taken from the suffix, then from the content.

    Raises :class:`UnreadableDocument` for what cannot be read and
    :class:`~bot.extract.limits.DocumentRefused` for what is beyond a cap (checked before
    the parsers see the file where possible, see :mod:`.limits`).
    """
    if not path.is_file():
        raise UnreadableDocument(str(path))
    suffix = path.suffix.lower()
    if suffix in (".doc", ".xls", ".pdf", ".wps"):
        raise UnreadableDocument(str(path))
    office = suffix in (".docx", ".xlsx", ".xlsm")
    check_file(path, text=not office)
    if office:
        try:
            check_package(path)
            if suffix == ".docx":
                return _counted(Document(path.name, *docx_blocks(path)))
            return _counted(Document(path.name, *xlsx_blocks(path)))
        except DocumentRefused:
            raise
        except Exception as exc:  # python-docx / openpyxl raise many kinds for a broken file
            raise UnreadableDocument(str(path)) from exc
    text = _decode(path.read_bytes())
    if suffix in (".html", ".htm", ".xhtml"):
        # pages are often minified onto one line: their caps apply to what the parser finds
        return _counted(Document(path.name, html_blocks(text)))
    return _counted(Document(path.name, text_blocks(text)))


def _check_lines(text: str) -> None:
    """Before any parser: no line beyond the length cap, no more lines than blocks allowed."""
    count = 0
    for line in text.splitlines():
        Tally.text(line)  # a megabyte on one line is no list
        if line.strip():
            count += 1
    if count > MAX_BLOCKS:
        raise DocumentRefused("blocks", limit=MAX_BLOCKS)


def _counted(document: Document) -> Document:
    """Paragraphs plus rows within the cap, whatever format they came from."""
    if document.size > MAX_BLOCKS:
        raise DocumentRefused("blocks", limit=MAX_BLOCKS)
    return document


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def text_blocks(text: str) -> list[Block]:
    """Blocks of a plain-text, Markdown or HTML document.

    Text copied from a web page keeps markup inside cells and lines (``<p>``, ``<br>``,
    ``&nbsp;``): every cell and paragraph is read through :func:`fragment_text`, so no tag
    reaches a name.
    """
    if _HTML_TABLE.search(text):
        return html_blocks(text)
    _check_lines(text)
    if _MARKUP.search(text):
        return [_without_markup(b) for b in _plain_blocks(text)]
    return _plain_blocks(text)


_MARKUP = re.compile(
    r"<\s*/?\s*(?:p|br|b|span|div|strong|font|td|li)\b[^>]*>|&(?:nbsp|lt|gt|amp);", re.I
)


def _without_markup(block: Block) -> Block:
    if isinstance(block, Para):
        return Para(fragment_text(block.text).replace("\n", " "), block.line)
    table = Table()
    for row in block.rows:
        table.rows.append(
            Row(tuple(Cell(fragment_text(c.text), c.line, c.merged) for c in row.cells))
        )
    return table


def _plain_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    width: int | None = None  # of the last one-cell-per-line table, for continuations
    while i < len(lines):
        line = lines[i]
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        if line.lstrip().startswith("|") and _MD_DELIMITER.match(next_line):
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            blocks.extend(markdown_tables(lines[i:end], i + 1))
            i = end
        elif _is_cell_line(line):
            table, i, width = _cell_stream(lines, i, width)
            if table is not None:
                blocks.append(table)
        elif "\t" in line.strip():
            table, i = _tab_rows(lines, i)
            blocks.append(table)
        else:
            if line.strip():
                blocks.append(Para(strip_emphasis(line.strip()), i + 1))
            i += 1
    return blocks


def _is_cell_line(line: str) -> bool:
    return line.startswith("\t") and "\t" not in line[1:]


def _header_width(lines: list[str], start: int) -> int:
    """How many header cells begin at ``start`` (0 when these lines are no header)."""
    names: list[str] = []
    i = start
    while i < len(lines) and _is_cell_line(lines[i]) and lines[i].strip():
        names.append(lines[i].strip())
        i += 1
    known = sum(1 for n in names if role_of(n) is not None)
    if len(names) >= 2 and known >= 2 and all(len(n) <= 16 for n in names):
        return len(names)
    return 0


def _cell_stream(
    lines: list[str], start: int, width: int | None
) -> tuple[Table | None, int, int | None]:
    """Read a one-cell-per-line table from ``start``; returns it, the next index, its width."""
    header = _header_width(lines, start)
    if header:
        width = header
    if not width:
        # a stray tab-led line with no table to belong to: a paragraph
        return None, _as_paragraph(lines, start), width
    cells: list[Cell] = []
    i = start
    while i < len(lines):
        line = lines[i]
        if _is_cell_line(line):
            cells.append(Cell(line.strip(), i + 1))
        elif not line.strip():
            pass
        elif cells and len(cells) % width != 0:
            last = cells[-1]
            text = f"{last.text}\n{line.strip()}" if last.text else line.strip()
            cells[-1] = Cell(text, last.line if last.text else i + 1)
        else:
            break
        i += 1
    table = Table()
    for start_at, end_at in _row_spans(cells, width):
        for at in range(start_at, end_at, width):
            chunk = cells[at : min(at + width, end_at)]
            while len(chunk) < width:
                chunk.append(Cell("", chunk[-1].line))
            table.rows.append(Row(tuple(chunk)))
    return table, i, width


def _row_spans(cells: list[Cell], width: int) -> list[tuple[int, int]]:
    """Where rows start.  Normally every ``width`` cells; when an export dropped a cell, the
    item numbers ("1." "2." …, which all sit in one column) show where each row begins."""
    anchors = []
    for index, cell in enumerate(cells):
        number = parse_number(cell.text)
        is_item = number is not None and number.level in (Level.ITEM, Level.ITEM_CN)
        if number is not None and is_item and (not anchors or number.value == anchors[-1][1] + 1):
            anchors.append((index, number.value))
    residues = Counter(index % width for index, _ in anchors)
    if len(residues) <= 1:
        return [(0, len(cells))]
    column = anchors[0][0] % width  # the header and first row are whole: trust them
    starts = sorted({0, *(index - column for index, _ in anchors if index >= column)})
    return [(s, e) for s, e in zip(starts, [*starts[1:], len(cells)], strict=True) if e > s]


def _as_paragraph(lines: list[str], start: int) -> int:
    return start + 1


def _tab_rows(lines: list[str], start: int) -> tuple[Table, int]:
    """Tab-separated rows, one per line, until a line without a tab."""
    table = Table()
    i = start
    while i < len(lines) and "\t" in lines[i].strip():
        parts = lines[i].rstrip("\n").split("\t")
        table.rows.append(Row(tuple(Cell(p.strip(), i + 1) for p in parts)))
        i += 1
    return table, i
