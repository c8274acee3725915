"""Markdown and HTML tables (and HTML paragraphs) → blocks with source lines."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag
from markdown_it import MarkdownIt

from bot.extract.blocks import Block, Cell, Para, Row, Table

_BLOCK_TAGS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "div", "caption", "pre"]
_BLANKS = re.compile(r"[ \t\u3000\xa0]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n+")


def fragment_text(html: str) -> str:
    """Cell source with inline HTML (``<br>``, ``<p>``) as plain text with line breaks."""
    if "<" not in html and "&" not in html:
        return html.strip()
    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for p in soup.find_all(["p", "div", "li"]):
        p.insert_after("\n")
    return _tidy(soup.get_text())


def _tidy(text: str) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.splitlines()]
    return _MANY_NEWLINES.sub("\n", "\n".join(line for line in lines if line)).strip()


def markdown_tables(lines: list[str], first_line: int) -> list[Table]:
    """Pipe tables in ``lines`` (which start at 1-based ``first_line``), via markdown-it."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = md.parse("\n".join(lines))
    tables: list[Table] = []
    row_cells: list[Cell] = []
    row_line = first_line
    for token in tokens:
        if token.type == "table_open":
            tables.append(Table())
        elif token.type == "tr_open":
            row_cells = []
            row_line = first_line + (token.map[0] if token.map else 0)
        elif token.type == "inline" and tables and token.level >= 3:
            row_cells.append(Cell(fragment_text(token.content), row_line))
        elif token.type == "tr_close" and tables:
            tables[-1].rows.append(Row(tuple(row_cells)))
    return [t for t in tables if t.rows]


def html_blocks(html: str, first_line: int = 1) -> list[Block]:
    """Paragraph-like elements and tables, in document order; rowspan/colspan copies marked."""
    soup = BeautifulSoup(html, "html.parser")
    blocks: list[Block] = []
    for element in soup.find_all(["table", *_BLOCK_TAGS]):
        if element.find_parent("table") is not None:
            continue
        line = first_line - 1 + (element.sourceline or 1)
        if element.name == "table":
            table = _html_table(element, first_line)
            if table.rows:
                blocks.append(table)
        elif element.find(["table", *_BLOCK_TAGS]) is None:
            text = _tidy(element.get_text(" "))
            if text:
                blocks.append(Para(text, line))
    if not blocks:
        text = _tidy(soup.get_text("\n"))
        blocks.extend(Para(t, first_line + i) for i, t in enumerate(text.splitlines()) if t)
    return blocks


def _html_table(table: Tag, first_line: int) -> Table:
    grid: dict[tuple[int, int], Cell] = {}
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    for r, tr in enumerate(rows):
        line = first_line - 1 + (tr.sourceline or 1)
        c = 0
        for cell in tr.find_all(["td", "th"], recursive=False):
            while (r, c) in grid:
                c += 1
            text = fragment_text(cell.decode_contents())
            rowspan = _span(cell.get("rowspan"))
            colspan = _span(cell.get("colspan"))
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid[(r + dr, c + dc)] = Cell(text, line, merged=bool(dr or dc))
            c += colspan
    out = Table()
    width = max((c for _, c in grid), default=-1) + 1
    for r in range(len(rows)):
        line = first_line - 1 + (rows[r].sourceline or 1)
        out.rows.append(Row(tuple(grid.get((r, c), Cell("", line)) for c in range(width))))
    return out


def _span(value: object) -> int:
    try:
        return max(1, min(int(str(value)), 200))
    except (TypeError, ValueError):
        return 1
