"""Markdown and HTML tables (and HTML paragraphs) → blocks with source lines."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, ProcessingInstruction, Tag
from markdown_it import MarkdownIt

from bot.extract.blocks import Block, Cell, Para, Row, Table
from bot.extract.limits import MAX_NESTING, DocumentRefused, Tally

_BLOCK_TAGS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "div", "caption", "pre"]
_BLANKS = re.compile(r"[ \t\u3000\xa0]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n+")


def fragment_text(html: str) -> str:
    """Cell source with inline HTML (``<br>``, ``<p>``) as plain text with line breaks."""
    if "<" not in html and "&" not in html:
        return html.strip()
    return tag_text(BeautifulSoup(html, "html.parser"))


_LINE_TAGS = frozenset({"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})


def tag_text(tag: Tag) -> str:
    """An element's text, ``<br>`` and the end of each paragraph as line breaks.

    One walk with an explicit stack: no copy or re-parse of the element, and no recursion
    limit for deeply nested markup.
    """
    parts: list[str] = []
    stack: list[tuple[object, bool]] = [(tag, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append("\n")
        elif isinstance(node, Comment | Doctype | ProcessingInstruction):
            continue
        elif isinstance(node, NavigableString):
            parts.append(str(node))
        elif isinstance(node, Tag) and node.name not in _SKIP:
            if node.name == "br":
                parts.append("\n")
                continue
            if node.name in _LINE_TAGS:
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    return _tidy("".join(parts))


def _tidy(text: str) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.splitlines()]
    return _MANY_NEWLINES.sub("\n", "\n".join(line for line in lines if line)).strip()


# Markdown emphasis as exports write bold lead-ins: "**责任单位**：", "**完成时限：**", "*注*"
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(?P<inner>[^*_\n]+?)(?<=\S)\1")


def strip_emphasis(text: str) -> str:
    """The text without Markdown emphasis markers, so a bold label still reads as a label."""
    return _EMPHASIS.sub(lambda m: m["inner"], text) if ("*" in text or "__" in text) else text


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
            row_cells.append(Cell(strip_emphasis(fragment_text(token.content)), row_line))
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
    _check_nesting(html)
    soup = BeautifulSoup(html, "html.parser")
    blocks: list[Block] = []
    _Flow(blocks, first_line).read(soup.body or soup)
    if not blocks:
        text = _tidy(soup.get_text("\n"))
        blocks.extend(Para(t, first_line + i) for i, t in enumerate(text.splitlines()) if t)
    return blocks


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
# end tags HTML lets authors leave out, and void elements: never counted as nesting
_UNCLOSED = frozenset(
    {
        "p",
        "li",
        "td",
        "th",
        "tr",
        "tbody",
        "thead",
        "tfoot",
        "option",
        "dt",
        "dd",
        "colgroup",
        "caption",
        "br",
        "hr",
        "img",
        "input",
        "meta",
        "link",
        "area",
        "base",
        "col",
        "embed",
        "source",
        "track",
        "wbr",
        "param",
    }
)


def _check_nesting(html: str) -> None:
    """Refuse absurd nesting before parsing: html.parser closes tags in time proportional to
    the depth, so 50,000 nested <div> take minutes to parse, not to read."""
    depth = 0
    for match in _TAG.finditer(html):
        if match[2].lower() in _UNCLOSED or match[3]:
            continue
        depth += -1 if match[1] else 1
        if depth > 5 * MAX_NESTING:
            raise DocumentRefused("nesting", limit=MAX_NESTING)


class _Flow:
    """Walks the page in order, gathering inline text into paragraphs."""

    def __init__(self, blocks: list[Block], first_line: int) -> None:
        self.blocks = blocks
        self.first_line = first_line
        self.buffer: list[str] = []
        self.line = first_line
        self.tally = Tally()

    def flush(self) -> None:
        text = _tidy(" ".join(self.buffer))
        self.buffer = []
        for piece in text.splitlines():
            if piece.strip():
                self.tally.block(piece)
                self.blocks.append(Para(piece.strip(), self.line))

    def read(self, node: Tag, depth: int = 0) -> None:
        if depth > MAX_NESTING:
            raise DocumentRefused("nesting", limit=MAX_NESTING)
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
                self.table(child, depth + 1)
            elif child.name in _FLOW_BLOCKS:
                self.flush()
                self.line = self._line_of(child)
                self.read(child, depth + 1)
                self.flush()
            else:
                self.read(child, depth + 1)  # inline: b, span, a, font …

    def table(self, table: Tag, depth: int) -> None:
        cells = _own_cells(table)
        if _is_navigation(table, cells):
            return
        if _is_layout(table, cells):
            for cell in cells:
                self.line = self._line_of(cell)
                self.read(cell, depth + 1)
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
    counter = Tally()
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    for r, tr in enumerate(rows):
        line = first_line - 1 + (tr.sourceline or 1)
        c = 0
        for cell in tr.find_all(["td", "th"], recursive=False):
            while (r, c) in grid:
                c += 1
            text = tag_text(cell)
            rowspan = _span(cell.get("rowspan"))
            colspan = _span(cell.get("colspan"))
            counter.cell(text, rowspan * colspan)  # spans are copies: 200×200 each is a bomb
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
