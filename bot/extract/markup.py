"""Markdown and HTML tables (and HTML paragraphs) → blocks with source lines."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, ProcessingInstruction, Tag
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


_SKIP = frozenset({"script", "style", "head", "title", "noscript", "iframe", "select", "button"})
_FLOW_BLOCKS = frozenset(
    {
        *_BLOCK_TAGS,
        "ul",
        "ol",
        "section",
        "article",
        "main",
        "center",
        "blockquote",
        "header",
        "footer",
        "nav",
        "aside",
        "tbody",
        "thead",
        "tr",
        "td",
        "th",
        "form",
        "dl",
        "dt",
        "dd",
    }
)
_LAYOUT_CELL_CHARS = 1500  # a cell holding more than this is a page column, not a datum


def html_blocks(html: str, first_line: int = 1) -> list[Block]:
    """Paragraphs and data tables in reading order, through any layout tables.

    Government pages put the whole article inside layout tables (navigation, then a cell
    holding the text and its annex table, then a footer).  A table whose cells hold other
    tables or whole articles, or that has a single column, is layout: its cells are read
    as part of the page.  A table that is all links is navigation and is dropped.  What
    remains are data tables; rowspan/colspan copies are marked as merged.
    """
    soup = BeautifulSoup(html, "html.parser")
    blocks: list[Block] = []
    _Flow(blocks, first_line).read(soup.body or soup)
    if not blocks:
        text = _tidy(soup.get_text("\n"))
        blocks.extend(Para(t, first_line + i) for i, t in enumerate(text.splitlines()) if t)
    return blocks


class _Flow:
    """Walks the page in order, gathering inline text into paragraphs."""

    def __init__(self, blocks: list[Block], first_line: int) -> None:
        self.blocks = blocks
        self.first_line = first_line
        self.buffer: list[str] = []
        self.line = first_line

    def flush(self) -> None:
        text = _tidy(" ".join(self.buffer))
        self.buffer = []
        for piece in text.splitlines():
            if piece.strip():
                self.blocks.append(Para(piece.strip(), self.line))

    def read(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                if str(child).strip():
                    if not self.buffer:
                        self.line = self._line_of(node)
                    self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _SKIP:
                continue
            if child.name == "br":
                self.buffer.append("\n")
            elif child.name == "table":
                self.flush()
                self.table(child)
            elif child.name in _FLOW_BLOCKS:
                self.flush()
                self.line = self._line_of(child)
                self.read(child)
                self.flush()
            else:
                self.read(child)  # inline: b, span, a, font …

    def table(self, table: Tag) -> None:
        cells = _own_cells(table)
        if _is_navigation(table, cells):
            return
        if _is_layout(table, cells):
            for cell in cells:
                self.line = self._line_of(cell)
                self.read(cell)
                self.flush()
            return
        data = _html_table(table, self.first_line)
        if data.rows:
            self.blocks.append(data)

    def _line_of(self, node: Tag) -> int:
        return self.first_line - 1 + (node.sourceline or 1)


def _own_rows(table: Tag) -> list[Tag]:
    return [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]


def _own_cells(table: Tag) -> list[Tag]:
    return [c for tr in _own_rows(table) for c in tr.find_all(["td", "th"], recursive=False)]


def _is_layout(table: Tag, cells: list[Tag]) -> bool:
    if (
        not cells
        or max(len(r.find_all(["td", "th"], recursive=False)) for r in _own_rows(table)) < 2
    ):
        return True  # one column: a frame around the content
    for cell in cells:
        if cell.find("table") is not None:
            return True
        if len(cell.get_text()) > _LAYOUT_CELL_CHARS:
            return True
    return False


def _is_navigation(table: Tag, cells: list[Tag]) -> bool:
    """Menus and "related articles" lists: nearly all of the text is links."""
    if table.find("table") is not None:
        return False
    text = "".join(c.get_text() for c in cells).strip()
    if not text:
        return True
    linked = "".join(a.get_text() for c in cells for a in c.find_all("a")).strip()
    return len(linked) >= 0.6 * len(text.replace(" ", ""))


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
